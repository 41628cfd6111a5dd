package projector

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// handleActiveBatch is the batch of a versioned projector's follower: the
// processor named like the projector, which keeps the active version up
// to date. Its transaction reads the active version first and writes that
// version's tables; a swap changes the active version and fences the
// follower in one transaction, so a batch never writes a version that is
// no longer active.
func (p *Projector) handleActiveBatch(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	return p.handleWith(ctx, p.handlers, p.activeScope, batch, cp)
}

// activeScope checks that the active version is the code's, and gives the
// handlers its tables.
func (p *Projector) activeScope(ctx context.Context, tx *gorm.DB) (context.Context, error) {
	v := p.ver
	active, ok, err := v.store.ActiveProjectionVersionTx(ctx, tx, p.Name())
	switch {
	case err != nil:
		return ctx, err
	case !ok:
		return ctx, errors.New("no active version: run Migrate")
	case active.Version != v.version:
		v.mu.Lock()
		if v.stopFollower != nil {
			v.stopFollower(errOutdated)
		}
		v.mu.Unlock()
		return ctx, fmt.Errorf("active version %d: %w", active.Version, errOutdated)
	}
	return withTables(ctx, active.Label, p.opts.Tables), nil
}

// activeTables returns the physical names of the tables of the active
// version (the tables themselves when p is not versioned).
func (p *Projector) activeTables(ctx context.Context, tx *gorm.DB) ([]string, error) {
	if p.ver == nil {
		return p.opts.Tables, nil
	}
	active, ok, err := p.ver.store.ActiveProjectionVersionTx(ctx, tx, p.Name())
	if err != nil || !ok {
		return nil, err
	}
	tables := make([]string, len(active.Tables))
	for i, t := range active.Tables {
		tables[i] = eventstore.ProjectionTable(t, active.Label)
	}
	return tables, nil
}

// build is a version being built beside the active one by a processor of
// its own, named after the projector and the label.
type build struct {
	label    string
	version  int64
	proc     *processing.Processor
	handlers *processing.Handlers[*gorm.DB]

	// Guarded by versioning.mu.
	running bool
	stop    context.CancelCauseFunc
	err     error // the run's failure
	// retry: a rebuild was asked for while the run was still ending (its
	// processor already reported the failure): the failure it ends with
	// is not kept, so the build resumes.
	retry bool
}

// newBuild returns the build of v, with a processor whose handlers are
// p's.
func (p *Projector) newBuild(v eventstore.ProjectionVersion) (*build, error) {
	b := &build{label: v.Label, version: v.Version}
	handle := func(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
		return p.handleBuildBatch(ctx, b, batch, cp)
	}
	proc, handlers, err := processing.NewKind[*gorm.DB]("projector", p.store, v.Builder, handle, p.opts.Processing)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	regs := p.regs
	p.mu.Unlock()
	for _, on := range regs {
		if err := on(handlers); err != nil {
			return nil, err
		}
	}
	b.proc, b.handlers = proc, handlers
	return b, nil
}

// end ends the build's run with cause.
func (p *Projector) endBuild(b *build, cause error) {
	p.ver.mu.Lock()
	defer p.ver.mu.Unlock()
	if b.stop != nil {
		b.stop(cause)
	}
}

// handleBuildBatch handles a batch of a build. Once the build is within a
// batch of the head, it tries to swap it in, in the batch's transaction;
// when the swap cannot happen yet, it commits the batch alone.
func (p *Projector) handleBuildBatch(ctx context.Context, b *build, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	if p.nearHead(ctx, batch.Through) {
		saved, err := p.swap(ctx, b, batch, cp)
		switch {
		case err == nil:
			p.ver.log.InfoContext(ctx, "projector version swapped in", "version", b.version, "label", b.label, "position", saved)
			p.endBuild(b, errSwapped)
			p.ver.wakeUp()
			return saved, nil
		case errors.Is(err, errBuildOver) || errors.Is(err, eventstore.ErrProjectionState):
			p.endBuild(b, errBuildOver)
			p.ver.wakeUp()
			return 0, err
		case ctx.Err() != nil:
			return 0, err
		}
		// A handler failed or the transaction could not commit: the
		// batch alone meets the same failure, which the error handler
		// then sees.
		p.ver.log.DebugContext(ctx, "projector version not swapped yet", "label", b.label, "error", err)
	}
	return p.handleWith(ctx, b.handlers, p.buildScope(b), batch, cp)
}

// buildScope checks that b is still being built, and gives the handlers
// its tables.
func (p *Projector) buildScope(b *build) scope {
	return func(ctx context.Context, tx *gorm.DB) (context.Context, error) {
		v, ok, err := p.ver.store.ProjectionVersionTx(ctx, tx, p.Name(), b.label)
		if err != nil {
			return ctx, err
		}
		if !ok || v.State != eventstore.ProjectionBuilding {
			p.endBuild(b, errBuildOver)
			p.ver.wakeUp()
			return ctx, errBuildOver
		}
		return withTables(ctx, b.label, p.opts.Tables), nil
	}
}

// batchSize is the processor's batch size.
func (p *Projector) batchSize() int {
	if n := p.opts.Processing.BatchSize; n > 0 {
		return n
	}
	return processing.DefaultBatchSize
}

// nearHead reports whether position is within one batch of the head.
func (p *Projector) nearHead(ctx context.Context, position int64) bool {
	head, err := p.ver.store.Head(ctx)
	return err == nil && head-position <= int64(p.batchSize())
}

// errNotYet reports a swap that cannot happen in this batch: the
// catch-up would handle an event of a stream whose events the builder has
// parked (it must park behind them, as processing does). The batch commits
// alone, and the next one tries again.
var errNotYet = errors.New("an event to catch up on is of a stream with parked events")

// swap handles the batch and swaps b in, in one transaction: it fences
// the follower of the active version, handles the events up to the
// follower's position (at most a batch or two: b is within a batch of the
// head), saves b's position there, moves the follower's position to it,
// and points the views at b's tables. It returns the position saved.
func (p *Projector) swap(ctx context.Context, b *build, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	v := p.ver
	p.mu.Lock()
	types := p.types
	p.mu.Unlock()
	parked, err := p.parkedStreams(ctx, b)
	if err != nil {
		return 0, err
	}
	streams := p.opts.Processing.Streams
	var saved int64
	p.batch.Lock()
	defer p.batch.Unlock()
	err = p.store.Transaction(ctx, func(tx *gorm.DB) error {
		err := v.store.SwapProjectionVersionTx(ctx, tx, p.Name(), b.label, func(active int64, read func(int64, int, ...string) (event.Batch, error)) (int64, error) {
			hctx, err := p.begin(ctx, tx, p.buildScope(b))
			if err != nil {
				return 0, err
			}
			if err := p.handle(hctx, tx, b.handlers, batch.Events); err != nil {
				return 0, err
			}
			through := batch.Through
			for through < active {
				next, err := read(through, p.batchSize(), types...)
				if err != nil {
					return 0, err
				}
				events := next.Events[:0:0]
				for _, e := range next.Events {
					switch {
					case !streams.Match(e.StreamID):
					case parked[e.StreamID]:
						return 0, errNotYet
					default:
						events = append(events, e)
					}
				}
				if err := p.handle(hctx, tx, b.handlers, events); err != nil {
					return 0, err
				}
				through = next.Through
			}
			if err := p.flush(hctx, tx); err != nil {
				return 0, err
			}
			err = cp.SaveWithParking(ctx, through, func(ctx context.Context, name string, epoch, from, to int64) (bool, error) {
				return p.store.SavePositionTx(ctx, tx, name, epoch, from, to)
			}, p.parkTx(tx))
			if err != nil {
				return 0, err
			}
			saved = through
			return through, nil
		})
		if err == nil && v.swapHook != nil {
			v.swapHook() // tests: a crash inside the swap's transaction
		}
		return err
	})
	return saved, err
}

// parkedStreams returns the streams in which the builder of b has parked
// events, when the projector parks.
func (p *Projector) parkedStreams(ctx context.Context, b *build) (map[string]bool, error) {
	if !p.opts.Processing.Park {
		return nil, nil
	}
	pk, ok := p.store.(interface {
		ParkedStreams(ctx context.Context, processor string) ([]event.ParkedStream, error)
	})
	if !ok {
		return nil, nil
	}
	ss, err := pk.ParkedStreams(ctx, b.proc.Name())
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ss))
	for _, s := range ss {
		out[s.StreamID] = true
	}
	return out, nil
}
