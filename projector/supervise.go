package projector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// RunOwned is [processing.Processor.RunOwned] for a projector: it runs p
// while this process holds its lease (see package processing).
//
// A versioned projector runs two processors, each under its own lease:
// the follower, named like the projector, which keeps the active version
// up to date while the code declares that version; and, while a version
// of the code's is being built, its builder (named after the projector
// and the build's label), which builds it from the first event and swaps
// it in once it has caught up. RunOwned reads the state of the versions
// every Options.PollInterval, so that it takes up a rebuild asked for
// elsewhere and drops retired versions when their time has come. While a
// newer version than the code's is active (a process of the previous
// deployment), it runs nothing and stands by. It returns nil when ctx
// ends, and the follower's error if the follower's error handler gives
// up; a builder that fails is reported by [Projector.Building] and the
// follower goes on.
func (p *Projector) RunOwned(ctx context.Context, o processing.Ownership) error {
	if p.ver == nil {
		return p.Processor.RunOwned(ctx, o)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("projector: run %s: %w", p.Name(), err)
	}
	if o.Owner == "" {
		o.Owner = processing.NewOwnerID()
	}
	return p.supervise(ctx, o)
}

// Run is [processing.Processor.Run] for a projector: it runs p until ctx
// ends. A versioned projector always runs under leases, as
// [Projector.RunOwned] with a zero [processing.Ownership]: its follower
// and its builder may run in different processes.
func (p *Projector) Run(ctx context.Context) error {
	if p.ver == nil {
		return p.Processor.Run(ctx)
	}
	return p.RunOwned(ctx, processing.Ownership{})
}

// Status returns the state of p's processor — for a versioned projector,
// its follower's. A versioned projector whose follower does not run,
// because the active version is not the code's, is in
// [processing.Standby]; see [Projector.Building] for its build.
func (p *Projector) Status() processing.Status {
	st := p.Processor.Status()
	if p.ver != nil {
		p.ver.mu.Lock()
		waiting := p.ver.waiting
		p.ver.mu.Unlock()
		if waiting {
			st.State, st.Owner = processing.Standby, ""
		}
	}
	return st
}

// Version returns the version p's code declares (Options.Version): 0 for
// a projector that is not versioned.
func (p *Projector) Version() int { return p.opts.Version }

// Building reports the version of p being built beside the active one
// that this process runs or stands by for (or ran last, until it is
// swapped in or given up), with its builder's state; ok is false when
// there is none. [Projector.Versions] reads the same from the database,
// from any process.
func (p *Projector) Building() (b processing.Build, ok bool) {
	if p.ver == nil {
		return processing.Build{}, false
	}
	p.ver.mu.Lock()
	cur := p.ver.build
	p.ver.mu.Unlock()
	if cur == nil {
		return processing.Build{}, false
	}
	return processing.Build{Version: int(cur.version), Label: cur.label, Status: cur.proc.Status()}, true
}

// warnEvery bounds how often a supervisor that keeps failing (its database
// out of reach, say) says so.
const warnEvery = 30 * time.Second

// runEnd is the end of a run of the follower (b nil) or of a build.
type runEnd struct {
	b     *build
	err   error // the run's
	cause error // why its context ended, if it did
}

// supervise runs a versioned projector: its follower and its builder, as
// the state of its versions says.
func (p *Projector) supervise(ctx context.Context, o processing.Ownership) error {
	v := p.ver
	if !v.running.CompareAndSwap(false, true) {
		return fmt.Errorf("projector: run %s: %w", p.Name(), processing.ErrRunning)
	}
	defer v.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	ends := make(chan runEnd)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		go func() {
			wg.Wait()
			close(ends)
		}()
		for e := range ends {
			p.ended(e)
		}
		v.mu.Lock()
		v.waiting = false
		v.mu.Unlock()
	}()
	s := supervisor{p: p, o: o, ctx: ctx, wg: &wg, ends: ends}
	poll := time.NewTicker(v.poll)
	defer poll.Stop()
	var warned time.Time // the last warning of a failing reconcile
	for {
		if err := s.reconcile(); err != nil && ctx.Err() == nil && time.Since(warned) >= warnEvery {
			warned = time.Now()
			v.log.WarnContext(ctx, "projector cannot bring its versions up to date; retrying", "error", err, "retry_every", v.poll)
		} else if err == nil {
			warned = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil
		case e := <-ends:
			p.ended(e)
			if e.b == nil {
				s.following = false
				if e.err != nil {
					// The follower's error handler gave up: the projector
					// has failed, as an unversioned one would.
					return e.err
				}
			}
		case <-v.wake:
		case <-poll.C:
		}
	}
}

// supervisor is the state of one supervise.
type supervisor struct {
	p         *Projector
	o         processing.Ownership
	ctx       context.Context
	wg        *sync.WaitGroup
	ends      chan<- runEnd
	following bool // the follower runs
}

// reconcile starts and stops the follower and the builder as the versions
// say, and drops the retired versions whose time has come.
func (s *supervisor) reconcile() error {
	p, v, ctx := s.p, s.p.ver, s.ctx
	vs, err := v.store.ProjectionVersions(ctx, p.Name())
	if err != nil {
		return err
	}
	active, building := liveVersions(vs)
	if active == nil || (active.Version < v.version && (building == nil || building.Version < v.version)) {
		if _, err := p.ensure(ctx, ensureRun); err != nil {
			return err
		}
		if vs, err = v.store.ProjectionVersions(ctx, p.Name()); err != nil {
			return err
		}
		if active, building = liveVersions(vs); active == nil {
			return errors.New("no active version")
		}
	}

	// The follower runs while the code's version is the active one.
	follow := active.Version == v.version
	v.mu.Lock()
	v.waiting = !follow
	switch {
	case follow && !s.following:
		fctx, stop := context.WithCancelCause(ctx)
		v.stopFollower = stop
		s.following = true
		s.wg.Go(func() {
			err := p.Processor.RunOwned(fctx, s.o)
			cause := context.Cause(fctx)
			stop(nil)
			s.ends <- runEnd{err: err, cause: cause}
		})
	case !follow && s.following && v.stopFollower != nil:
		v.stopFollower(errOutdated)
	}
	cur := v.build
	v.mu.Unlock()

	// The builder runs while a version of the code's is being built.
	if building != nil && building.Version == v.version {
		if cur == nil || cur.label != building.Label {
			if cur != nil {
				p.endBuild(cur, errBuildOver)
			}
			if cur, err = p.newBuild(*building); err != nil {
				return err
			}
		}
		v.mu.Lock()
		v.build = cur
		start := !cur.running && cur.err == nil
		if start {
			bctx, stop := context.WithCancelCause(ctx)
			cur.running, cur.stop = true, stop
			b := cur
			s.wg.Go(func() {
				err := b.proc.RunOwned(bctx, s.o)
				cause := context.Cause(bctx)
				stop(nil)
				s.ends <- runEnd{b: b, err: err, cause: cause}
			})
		}
		v.mu.Unlock()
	} else if cur != nil {
		p.endBuild(cur, errBuildOver)
		v.mu.Lock()
		if !cur.running && v.build == cur {
			v.build = nil
		}
		v.mu.Unlock()
	}

	// Retired versions are dropped once DropAfter has passed.
	if v.dropAfter >= 0 {
		for _, r := range vs {
			if r.State == eventstore.ProjectionRetired && time.Since(r.RetiredAt) >= v.dropAfter {
				return p.dropRetired(ctx, v.dropAfter)
			}
		}
	}
	return nil
}

// ended records the end of a run of the follower or of a build.
func (p *Projector) ended(e runEnd) {
	v := p.ver
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.b == nil {
		v.stopFollower = nil
		return
	}
	e.b.running, e.b.stop = false, nil
	retry := e.b.retry
	e.b.retry = false
	switch {
	case e.err != nil && retry:
		v.log.Error("projector build failed; resuming it, as a rebuild was asked for", "label", e.b.label, "error", e.err)
		v.wakeUp()
	case e.err != nil:
		e.b.err = e.err
		v.log.Error("projector build failed; it resumes when the process restarts or a rebuild is asked for", "label", e.b.label, "error", e.err)
	case errors.Is(e.cause, errSwapped) || errors.Is(e.cause, errBuildOver):
		if v.build == e.b {
			v.build = nil
		}
	}
}

// dropRetired drops the versions retired at least olderThan ago.
func (p *Projector) dropRetired(ctx context.Context, olderThan time.Duration) error {
	dropped, err := p.ver.store.DropRetiredProjectionVersions(ctx, p.Name(), olderThan)
	for _, d := range dropped {
		p.ver.log.InfoContext(ctx, "projector dropped a retired version", "version", d.Version, "label", d.Label, "retired_at", d.RetiredAt)
	}
	return err
}
