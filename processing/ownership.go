package processing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Defaults of [Ownership]'s zero fields.
const (
	DefaultLeaseDuration = 15 * time.Second
)

// errLeaseLost ends an owned run whose lease another owner (or a reset)
// took: the processor stands by again.
var errLeaseLost = errors.New("processing: lease lost")

// Ownership configures [Processor.RunOwned]: who the owner is and how its
// lease is timed. The zero value works. Leases are timed by the database's
// clock, so the clocks of the processes sharing them need not agree; only
// their sense of elapsed time matters (a process that cannot renew its
// lease for LeaseDuration stops working on its own, although fencing
// would keep it from committing anyway).
type Ownership struct {
	// Owner identifies this process among those that share the
	// processors; empty means a new ID made of the host name, the
	// process ID and a random part. A stable ID (a pod name, say) lets a
	// restarted process take back its processors at once after a crash,
	// instead of waiting for the crashed one's lease to expire; two live
	// processes must never share one.
	Owner string
	// LeaseDuration is how long a lease lasts without renewal: the
	// longest another process waits to take over from an owner that died.
	// Zero means DefaultLeaseDuration.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often the owner renews its lease; zero
	// means a third of LeaseDuration. It must be shorter than
	// LeaseDuration.
	HeartbeatInterval time.Duration
	// PollInterval is how often a standby process tries to take the
	// lease; zero means HeartbeatInterval.
	PollInterval time.Duration
}

// Validate reports options that cannot work.
func (o Ownership) Validate() error {
	var errs []error
	if o.LeaseDuration < 0 || o.HeartbeatInterval < 0 || o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: negative lease duration or interval", ErrInvalid))
	}
	if o.LeaseDuration != 0 && o.LeaseDuration < time.Millisecond {
		errs = append(errs, fmt.Errorf("%w: lease duration %v is shorter than a millisecond", ErrInvalid, o.LeaseDuration))
	}
	if d := o.withDefaults(); d.HeartbeatInterval >= d.LeaseDuration {
		errs = append(errs, fmt.Errorf("%w: heartbeat interval %v is not shorter than the lease duration %v", ErrInvalid, d.HeartbeatInterval, d.LeaseDuration))
	}
	if len(o.Owner) > MaxNameLength {
		errs = append(errs, fmt.Errorf("%w: owner ID of %d bytes, longer than %d", ErrInvalid, len(o.Owner), MaxNameLength))
	}
	return errors.Join(errs...)
}

func (o Ownership) withDefaults() Ownership {
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = o.LeaseDuration / 3
	}
	if o.PollInterval <= 0 {
		o.PollInterval = o.HeartbeatInterval
	}
	if o.Owner == "" {
		o.Owner = NewOwnerID()
	}
	return o
}

// NewOwnerID returns an owner ID unique to this process and call: the
// host name, the process ID and a random part.
func NewOwnerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// releaseTimeout bounds the release of a lease after the run's context has
// ended.
const releaseTimeout = 5 * time.Second

// RunOwned is [Processor.Run] for a processor shared by several processes:
// the processor runs only while this process holds its lease, so it runs
// in one process at a time.
//
// RunOwned first stands by (state [Standby]) until it takes the lease —
// at once when no one holds it, or when its holder has not renewed it for
// its LeaseDuration (by the database's clock). Taking the lease bumps the
// processor's epoch, and every batch's position update checks the epoch
// in the same statement (and, for a projector, the same transaction): an
// owner that was paused or cut off while another took over can never
// commit a batch again. While it runs, RunOwned renews the lease every
// HeartbeatInterval; when it finds the lease lost (or a batch is fenced),
// it stops processing and stands by again. Failures are retried or end
// the run as the ErrorHandler says, as with Run; RunOwned then gives up
// its lease and returns the error. When ctx ends, it stops, gives up its
// lease so that a standby process takes over at once, and returns nil.
//
// A [Processor.Reset] while an owner runs fences it; it takes the lease
// again, with a new epoch, and starts over from position 0.
func (p *Processor) RunOwned(ctx context.Context, o Ownership) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("processing: run %s: %w", p.name, err)
	}
	if err := p.start(); err != nil {
		return err
	}
	if !p.running.CompareAndSwap(false, true) {
		return fmt.Errorf("processing: run %s: %w", p.name, ErrRunning)
	}
	defer p.running.Store(false)
	o = o.withDefaults()
	if p.parts != nil {
		return p.runPartitions(ctx, &o)
	}
	if err := p.checkUnpartitioned(ctx); err != nil {
		return err
	}
	log := p.opts.Logger.With("processor", p.name, "owner", o.Owner)
	types := p.h.Types()
	for {
		l, ok := p.standby(ctx, o, log)
		if !ok {
			p.update(func(s *Status) { s.State = Stopped })
			return nil
		}
		log.InfoContext(ctx, "event processor lease taken", "epoch", l.epoch, "position", l.position)
		p.update(func(s *Status) { s.Owner, s.Position = o.Owner, l.position })

		runCtx, cancel := context.WithCancelCause(ctx)
		if p.part != nil {
			p.part.taken(cancel)
		}
		var wg sync.WaitGroup
		wg.Go(func() { p.heartbeat(runCtx, cancel, o, l, log) })
		r := run{p: p, types: types, epoch: l.epoch, owned: true}
		failed := r.loop(runCtx, log) // nil when runCtx ended; errLeaseLost when fenced
		err := failed
		if err == nil {
			err = context.Cause(runCtx) // nil, ctx's error, or errLeaseLost
		}
		cancel(nil)
		wg.Wait()

		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if rerr := p.store.ReleaseLease(rctx, p.name, l.owner, l.epoch); rerr != nil {
			log.WarnContext(ctx, "event processor lease not released", "error", rerr)
		}
		rcancel()
		if p.part != nil {
			p.part.released()
		}

		switch {
		case failed != nil && !errors.Is(failed, errLeaseLost):
			// The error handler gave up (state Failed, logged by loop):
			// that is the run's result even if ctx ended meanwhile,
			// during the release.
			return failed
		case ctx.Err() != nil:
			p.update(func(s *Status) { s.State = Stopped })
			return nil
		case errors.Is(err, errLeaseLost):
			log.WarnContext(ctx, "event processor lease lost; standing by", "epoch", l.epoch, "error", err)
			p.update(func(s *Status) { s.Owner = "" })
		case errors.Is(err, errReleased):
			log.InfoContext(ctx, "event processor partition released; standing by", "epoch", l.epoch)
			p.update(func(s *Status) { s.Owner = "" })
		}
	}
}

// lease is the ownership of a processor's row: its owner and the epoch the
// owner's position updates must find.
type lease struct {
	owner    string
	epoch    int64
	position int64 // when the lease was taken
}

// acquire takes the processor's lease for o.Owner if no one else holds it;
// ok is false when another owner does.
func (p *Processor) acquire(ctx context.Context, o Ownership) (l lease, ok bool, err error) {
	if p.part != nil && !p.part.claim() {
		return lease{}, false, nil // this process holds its share
	}
	epoch, pos, ok, err := p.store.AcquireLease(ctx, p.name, o.Owner, o.LeaseDuration)
	if err != nil || !ok {
		if p.part != nil {
			p.part.unclaim()
		}
		return lease{}, false, err
	}
	return lease{owner: o.Owner, epoch: epoch, position: pos}, true, nil
}

// standby tries to take the lease every PollInterval until it does (ok) or
// ctx ends.
func (p *Processor) standby(ctx context.Context, o Ownership, log *slog.Logger) (l lease, ok bool) {
	loaded := false
	for {
		err := func() error {
			if !loaded {
				if _, _, err := p.loadPosition(ctx); err != nil {
					return err
				}
				loaded = true
			}
			var err error
			if l, ok, err = p.acquire(ctx, o); err != nil || ok {
				return err
			}
			owner, pos, err := p.store.LeaseHolder(ctx, p.name)
			if err != nil {
				return err
			}
			p.update(func(s *Status) { s.State, s.Owner, s.Position = Standby, owner, pos })
			_ = p.refreshParked(ctx) // a failure leaves the last count seen
			return nil
		}()
		if ok {
			return l, true
		}
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "event processor cannot take its lease; retrying", "error", err, "retry_in", o.PollInterval)
			p.update(func(s *Status) { s.State, s.LastError = Standby, err })
		}
		t := time.NewTimer(o.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return lease{}, false
		case <-t.C:
		}
	}
}

// heartbeat renews l every HeartbeatInterval until ctx ends. It cancels
// the run with errLeaseLost when the lease is gone, or when it could not
// renew it for LeaseDuration (another owner may have taken it by now).
func (p *Processor) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, o Ownership, l lease, log *slog.Logger) {
	renewed := time.Now() // the lease was taken just now
	t := time.NewTicker(o.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		ok, err := p.store.RenewLease(ctx, p.name, l.owner, l.epoch, o.LeaseDuration)
		if err == nil && !ok {
			err = fmt.Errorf("renew lease: %w", ErrFenced)
		}
		switch {
		case err == nil:
			renewed = sent
			// The parked count may change in other processes (a retry);
			// a failure to read it leaves the last one seen.
			_ = p.refreshParked(ctx)
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrFenced):
			cancel(fmt.Errorf("%w: %w", errLeaseLost, err))
			return
		case time.Since(renewed) >= o.LeaseDuration:
			cancel(fmt.Errorf("%w: not renewed for %v: %w", errLeaseLost, o.LeaseDuration, err))
			return
		default:
			log.WarnContext(ctx, "event processor lease not renewed; retrying", "error", err)
		}
	}
}
