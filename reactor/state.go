package reactor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// State makes a reactor stateful ([Options.State]): a reactor, or a
// process manager built on one, that keeps what it has learnt from
// earlier events in tables of its own, in the store's database. Each of
// its batches is one transaction in which the handlers read and write
// those tables ([OnState]), the events they emit are appended, and the
// position is saved — committed together or not at all, so the state,
// the position and the emitted events always agree, whatever fails or
// crashes: the state is exactly-once.
type State struct {
	// Setup, if set, creates the reactor's tables. The reactor's Migrate
	// runs it in a transaction; it must be safe to run again (CREATE
	// TABLE IF NOT EXISTS).
	Setup func(ctx context.Context, tx *gorm.DB) error
	// Tables names the reactor's tables, whose rows [Reactor.Reset]
	// deletes together with the position.
	Tables []string
}

// DefaultStateBatchSize is the batch size of a stateful reactor whose
// Processing.BatchSize is zero. Its batch is a transaction that stays open
// while the handlers run, side effects included — on SQLite, holding the
// database's write lock, which other writers wait for — and each of its
// events is a savepoint (on PostgreSQL a subtransaction, of which a
// transaction should not have many): a hundred events keep both short, at
// the catch-up speed of a thousand (measured: within the noise on SQLite
// and PostgreSQL). Lower it when side effects are slow.
const DefaultStateBatchSize = 100

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func (s *State) validate() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, t := range s.Tables {
		if !tableName.MatchString(t) {
			errs = append(errs, fmt.Errorf("%w: table name %q: want letters, digits and underscores", processing.ErrInvalid, t))
		}
	}
	return errors.Join(errs...)
}

// StateStore is what a stateful reactor needs of an event store: what
// every reactor needs, and transactions of its database in which the
// reactor's state, the events it emits and its position commit together.
// *eventstore.Store implements it.
type StateStore interface {
	Store
	// Transaction runs fn in a transaction of the store's database,
	// committed when fn returns nil.
	Transaction(ctx context.Context, fn func(tx *gorm.DB) error) error
	// SavepointTx runs fn in a savepoint of tx, rolled back to when fn
	// fails.
	SavepointTx(ctx context.Context, tx *gorm.DB, fn func() error) error
	// AppendAllTx appends in tx.
	AppendAllTx(ctx context.Context, tx *gorm.DB, appends []event.AppendRequest) ([][]event.Event, error)
	// SavePositionTx is SavePosition in tx.
	SavePositionTx(ctx context.Context, tx *gorm.DB, name string, epoch, from, to int64) (saved bool, err error)
	// ResetPositionTx is ResetPosition in tx.
	ResetPositionTx(ctx context.Context, tx *gorm.DB, name string) error
}

// StateFunc reacts to one event of type E in the batch's transaction tx:
// it reads and writes the reactor's tables through tx, triggers side
// effects and emits new events through emit. Data is the event's decoded
// data. Its writes, the events it emits and the reactor's position commit
// together; when it fails, its writes and its events are dropped and the
// events before it in the batch commit.
//
// tx runs on the transaction's own context, which the end of ctx does not
// cancel, so that what the batch handled so far commits when the reactor
// stops: write through tx as it is, and keep ctx for the side effects
// (tx.WithContext(ctx) would let a stop interrupt a statement, which
// leaves the transaction unusable and repeats the batch's side effects
// after the restart).
type StateFunc[E any] func(ctx context.Context, tx *gorm.DB, e event.Event, data E, emit *Emitter) error

// OnState registers h as the handler of r, a stateful reactor
// ([Options.State]), for events of type E. It fails with an error
// matching [processing.ErrInvalid] for a reactor without State, an
// unregistered type, a type that has a handler already, or once r has
// started to run.
func OnState[E any](r *Reactor, h StateFunc[E]) error {
	if r.state == nil {
		var zero E
		return fmt.Errorf("reactor: OnState[%T] for %s: %w: the reactor has no State option", zero, r.Name(), processing.ErrInvalid)
	}
	return processing.On(r.handlers, func(ctx context.Context, emit *Emitter, e event.Event, data E) error {
		return h(ctx, emit.tx, e, data, emit)
	})
}

// MustOnState is [OnState] for set-up code: it panics where OnState
// fails.
func MustOnState[E any](r *Reactor, h StateFunc[E]) {
	if err := OnState(r, h); err != nil {
		panic(err)
	}
}

// Tx returns the batch's transaction of a stateful reactor, in which the
// handler reads and writes the reactor's tables; nil for a reactor without
// State.
func (em *Emitter) Tx() *gorm.DB { return em.tx }

// Migrate creates the position table and, for a stateful reactor, runs
// the State's Setup in a transaction. It is safe to run again.
func (r *Reactor) Migrate(ctx context.Context) error {
	if err := r.Processor.Migrate(ctx); err != nil {
		return fmt.Errorf("reactor: %s: %w", r.Name(), err)
	}
	if r.state == nil || r.state.Setup == nil {
		return nil
	}
	if err := r.sstore.Transaction(ctx, func(tx *gorm.DB) error { return r.state.Setup(ctx, tx) }); err != nil {
		return fmt.Errorf("reactor: %s: setup: %w", r.Name(), err)
	}
	return nil
}

// Stateful reports whether r keeps state in its own tables (Options.State):
// its position must then never move without them (see [Reactor.Reset]).
func (r *Reactor) Stateful() bool { return r.state != nil }

// Reset moves the reactor's position back to 0 so that its next run
// starts again from the first event (see "Reset" in the package
// documentation); a stateful reactor's tables (State.Tables) are emptied
// in the same transaction. It fails with [processing.ErrRunning] while r
// runs.
func (r *Reactor) Reset(ctx context.Context) error {
	if r.state == nil {
		return r.Processor.Reset(ctx)
	}
	err := r.sstore.Transaction(ctx, func(tx *gorm.DB) error {
		// The position first, as a projector's Reset does: it waits for a
		// batch of a running owner that has updated the position row and
		// fences the rest, so the deletes then see that batch's rows.
		if err := r.ResetWith(ctx, func(ctx context.Context, name string) error {
			return r.sstore.ResetPositionTx(ctx, tx, name)
		}); err != nil {
			return err
		}
		for _, t := range r.state.Tables {
			if err := tx.Exec("DELETE FROM " + t).Error; err != nil {
				return fmt.Errorf("delete from %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reactor: reset %s: %w", r.Name(), err)
	}
	return nil
}

// queued is one Emit of a stateful reactor's batch, appended when the
// batch commits.
type queued = event.AppendRequest

// errNothingHandled rolls back a batch whose first event failed.
var errNothingHandled = errors.New("reactor: nothing handled")

// handleStateBatch handles a batch of a stateful reactor in one
// transaction: each event in a savepoint of its own, then the position
// and, last (they take the store's ordering lock), the emitted events.
//
// The transaction runs on a context that ctx's end does not cancel, so
// that when the reactor stops (or is paused) in the middle of a batch,
// the events handled so far commit with their state and their emitted
// events, and are not handled again.
func (r *Reactor) handleStateBatch(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	tctx := context.WithoutCancel(ctx)
	var saved int64
	var herr error // the failing event's
	err := r.sstore.Transaction(tctx, func(tx *gorm.DB) error {
		saved, herr = 0, nil
		var q []queued
		handled := 0
		for _, e := range batch.Events {
			if herr = ctx.Err(); herr != nil {
				break
			}
			n := len(q)
			em := &Emitter{r: r, cause: e, tx: tx, queue: &q}
			herr = r.sstore.SavepointTx(tctx, tx, func() error { return r.handlers.Handle(ctx, em, e) })
			if herr != nil {
				q = q[:n] // the failing event's emits are dropped with its writes
				break
			}
			handled++
		}
		if handled == 0 {
			return errNothingHandled
		}
		through := batch.Through
		if handled < len(batch.Events) {
			through = batch.Events[handled-1].Position
		}
		err := cp.SaveWithParking(tctx, through, func(ctx context.Context, name string, epoch, from, to int64) (bool, error) {
			return r.sstore.SavePositionTx(ctx, tx, name, epoch, from, to)
		}, r.parkTx(tx))
		if err != nil {
			return err
		}
		if len(q) > 0 {
			if _, err := r.sstore.AppendAllTx(tctx, tx, q); err != nil {
				return fmt.Errorf("reactor: emit: %w", err) // the store's error names the stream
			}
		}
		saved = through
		return nil
	})
	switch {
	case errors.Is(err, errNothingHandled):
		return 0, herr
	case err != nil:
		return 0, err
	}
	return saved, herr
}

// enqueue records an Emit of a stateful reactor, to append when the batch
// commits, and returns the events as they will be recorded, without their
// positions and versions.
func (em *Emitter) enqueue(ctx context.Context, streamID string, ids []uuid.UUID, corr string, events []any) ([]event.Event, error) {
	reg := em.r.store.Registry()
	out := make([]event.Event, len(events))
	for i, data := range events {
		typ, err := reg.TypeName(data)
		if err != nil {
			return nil, fmt.Errorf("reactor: emit to %q: %w", streamID, err)
		}
		if v := reflect.ValueOf(data); v.Kind() == reflect.Pointer && !v.IsNil() {
			data = v.Elem().Interface() // as Append returns it
		}
		out[i] = event.Event{ID: ids[i], StreamID: streamID, Type: typ, Data: data,
			CausationID: em.cause.ID.String(), CorrelationID: corr}
	}
	opts := []event.AppendOption{
		event.WithIDs(ids...),
		event.WithCausationID(em.cause.ID.String()),
		event.WithCorrelationID(corr),
	}
	if meta := traceMetadata(ctx); meta != nil {
		opts = append(opts, event.WithMetadata(meta))
		for i := range out {
			out[i].Metadata = maps.Clone(meta)
		}
	}
	*em.queue = append(*em.queue, queued{StreamID: streamID, Expected: event.Any, Events: events, Options: opts})
	return out, nil
}
