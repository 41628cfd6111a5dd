package projector

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// Store is what a projector needs of an event store: a processing store
// whose registry names the handlers' event types, and transactions of its
// database in which the handlers' writes commit together with the
// position. *eventstore.Store implements it.
type Store interface {
	processing.TypedStore
	// Transaction runs fn in a transaction of the store's database,
	// committed when fn returns nil.
	Transaction(ctx context.Context, fn func(tx *gorm.DB) error) error
	// SavePositionTx is SavePosition in tx, a transaction from
	// Transaction.
	SavePositionTx(ctx context.Context, tx *gorm.DB, name string, epoch, from, to int64) (saved bool, err error)
	// ResetPositionTx is ResetPosition in tx, a transaction from
	// Transaction.
	ResetPositionTx(ctx context.Context, tx *gorm.DB, name string) error
}

// Options configures a [Projector]. The zero value works.
type Options struct {
	// Processing configures the processor: batch size, error handler,
	// logger and error callback.
	Processing processing.Options
	// Setup, if set, creates the projection's tables. [Projector.Migrate]
	// runs it in a transaction; it must be safe to run again (CREATE
	// TABLE IF NOT EXISTS).
	Setup func(ctx context.Context, tx *gorm.DB) error
	// Tables names the projection's tables, whose rows [Projector.Reset]
	// deletes.
	Tables []string
	// Flush, if set, runs at the end of every batch's transaction, after
	// the handlers and before the position is saved: a projection that
	// collects rows in its handlers writes them here in one statement.
	// Such a projection must drop what it collected when a batch is
	// retried: Begin is the place to do it.
	Flush func(ctx context.Context, tx *gorm.DB) error
	// Begin, if set, runs at the start of every batch's transaction,
	// before the handlers.
	Begin func(ctx context.Context, tx *gorm.DB) error
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// Validate reports options that cannot work.
func (o Options) Validate() error {
	errs := []error{o.Processing.Validate()}
	for _, t := range o.Tables {
		if !tableName.MatchString(t) {
			errs = append(errs, fmt.Errorf("%w: table name %q: want letters, digits and underscores", processing.ErrInvalid, t))
		}
	}
	return errors.Join(errs...)
}

// HandlerFunc handles one event of type E in the batch's transaction tx.
// Data is the event's decoded data.
type HandlerFunc[E any] func(ctx context.Context, tx *gorm.DB, e event.Event, data E) error

// Projector builds a read model from events: its handlers write tables in
// the store's database, and each batch's writes commit in one transaction
// with the projector's position. Register handlers with [On] before Run.
// Its name, status, runs and waits are those of the embedded
// [processing.Processor], whose [processing.Processor.Kind] is
// "projector". Its methods are safe for concurrent use.
type Projector struct {
	*processing.Processor
	store    Store
	opts     Options
	handlers *processing.Handlers[*gorm.DB]
}

// New returns a projector named name over store. The name identifies the
// projector's position: unique among the store's processors, and stable
// across restarts. New does not touch the database; call
// [Projector.Migrate] before [processing.Processor.Run].
//
// Each batch (up to Options.Processing.BatchSize events) is one
// transaction: the handlers' writes and the new position commit together
// or not at all, so every event is projected exactly once, whatever fails
// or crashes. When a handler fails, the events before it in the batch are
// committed first, so the retry starts at the failing event.
func New(store Store, name string, opts Options) (*Projector, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("projector: new %q: %w", name, err)
	}
	if err := checkParking(store, opts); err != nil {
		return nil, fmt.Errorf("projector: new %q: %w", name, err)
	}
	p := &Projector{store: store, opts: opts}
	proc, handlers, err := processing.NewKind[*gorm.DB]("projector", store, name, p.handleBatch, opts.Processing)
	if err != nil {
		return nil, err
	}
	p.Processor, p.handlers = proc, handlers
	return p, nil
}

// On registers h as p's handler for events of type E, which must be
// registered with the store's registry. It fails with an error matching
// [processing.ErrInvalid] for an unregistered type, a type that has a
// handler already, or once p has started to run.
func On[E any](p *Projector, h HandlerFunc[E]) error {
	return processing.On(p.handlers, processing.HandlerFunc[*gorm.DB, E](h))
}

// MustOn is [On] for set-up code: it panics where On fails.
func MustOn[E any](p *Projector, h HandlerFunc[E]) {
	if err := On(p, h); err != nil {
		panic(err)
	}
}

// Migrate creates the position table and runs the Setup hook, in a
// transaction. It is safe to run again.
func (p *Projector) Migrate(ctx context.Context) error {
	if err := p.Processor.Migrate(ctx); err != nil {
		return fmt.Errorf("projector: %s: %w", p.Name(), err)
	}
	if p.opts.Setup == nil {
		return nil
	}
	err := p.store.Transaction(ctx, func(tx *gorm.DB) error {
		return p.opts.Setup(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("projector: %s: setup: %w", p.Name(), err)
	}
	return nil
}

// Reset deletes every row of the projection's tables (Options.Tables) and
// moves the projector's position back to 0 (forgetting its parked events),
// in one transaction, so that the next Run rebuilds the projection from
// the first event. An instance
// of the projector running in another process stops with
// [processing.ErrFenced] at its next batch; Reset fails with
// [processing.ErrRunning] while p itself runs.
func (p *Projector) Reset(ctx context.Context) error {
	err := p.store.Transaction(ctx, func(tx *gorm.DB) error {
		// The position first: it waits for a batch of a running owner
		// that has updated the position row, and fences the rest; the
		// deletes then see that batch's rows. Deleting first would miss
		// the rows of a batch committing meanwhile (PostgreSQL).
		if err := p.ResetWith(ctx, func(ctx context.Context, name string) error {
			return p.store.ResetPositionTx(ctx, tx, name)
		}); err != nil {
			return err
		}
		for _, t := range p.opts.Tables {
			if err := tx.Exec("DELETE FROM " + t).Error; err != nil {
				return fmt.Errorf("delete from %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("projector: reset %s: %w", p.Name(), err)
	}
	return nil
}

// failedAt is the error of the index-th event of a batch.
type failedAt struct {
	index int
	err   error
}

func (f *failedAt) Error() string { return f.err.Error() }
func (f *failedAt) Unwrap() error { return f.err }

// handleBatch handles a batch in one transaction.
func (p *Projector) handleBatch(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	err := p.commit(ctx, batch.Events, batch.Through, cp)
	if err == nil {
		return batch.Through, nil
	}
	fa, ok := errors.AsType[*failedAt](err)
	if !ok {
		return 0, err
	}
	if fa.index == 0 {
		return 0, fa.err
	}
	// Commit the events before the failing one, so that the position
	// stops right before it.
	through := batch.Events[fa.index-1].Position
	if perr := p.commit(ctx, batch.Events[:fa.index], through, cp); perr != nil {
		return 0, fa.err
	}
	return through, fa.err
}

// commit handles events in one transaction and saves through as the
// position.
func (p *Projector) commit(ctx context.Context, events []event.Event, through int64, cp processing.Checkpoint) error {
	return p.store.Transaction(ctx, func(tx *gorm.DB) error {
		if p.opts.Begin != nil {
			if err := p.opts.Begin(ctx, tx); err != nil {
				return fmt.Errorf("begin hook: %w", err)
			}
		}
		for i, e := range events {
			if err := p.handlers.Handle(ctx, tx, e); err != nil {
				return &failedAt{index: i, err: err}
			}
		}
		if p.opts.Flush != nil {
			if err := p.opts.Flush(ctx, tx); err != nil {
				return fmt.Errorf("flush hook: %w", err)
			}
		}
		return cp.SaveWithParking(ctx, through, func(ctx context.Context, name string, epoch, from, to int64) (bool, error) {
			return p.store.SavePositionTx(ctx, tx, name, epoch, from, to)
		}, p.parkTx(tx))
	})
}
