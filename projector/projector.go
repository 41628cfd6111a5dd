package projector

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

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

	// Version, when positive, makes the projector versioned (see the
	// package documentation): its tables are kept per version, the
	// queries read them through views named like them, and a new version
	// is built beside the active one and swapped in once it has caught
	// up. Raise it whenever the projection's tables or handlers change.
	// A versioned projector needs Tables, Setup, and a store that keeps
	// projection versions ([VersionStore]); its Setup, hooks and
	// handlers name their tables with [Table]; it builds every version
	// from the first event (Processing.Start must be FromBeginning).
	// Zero means not versioned.
	Version int
	// DropAfter is how long the tables of a version replaced by a swap
	// are kept before the running projector drops them; zero means
	// DefaultDropAfter, and a negative value keeps them until
	// [Projector.DropRetired] is called.
	DropAfter time.Duration
	// PollInterval is how often a running versioned projector reads the
	// state of its versions, to take up a rebuild asked for by another
	// process, follow a swap made elsewhere and drop retired versions;
	// zero means DefaultPollInterval.
	PollInterval time.Duration
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
	errs = append(errs, o.validateVersion())
	if o.Version > 0 && o.Processing.Partitions > 1 {
		errs = append(errs, fmt.Errorf("%w: a versioned projector cannot be partitioned (its builds and swaps run as one processor)", processing.ErrInvalid))
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
	ver      *versioning // nil unless Options.Version > 0

	// batch is held by each batch's transaction: a versioned projector's
	// follower and builder run their batches one at a time in a process,
	// so that hooks and handlers may keep per-batch state in their
	// closures (a Flush buffer) as an unversioned projector's do.
	batch sync.Mutex

	mu sync.Mutex
	// regs registers the handlers again in a builder's table, and types
	// are their event type names (for the catch-up of a swap).
	regs  []func(*processing.Handlers[*gorm.DB]) error
	types []string
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
	if err := checkConcurrency(opts); err != nil { // concurrency.go
		return nil, fmt.Errorf("projector: new %q: %w", name, err)
	}
	p := &Projector{store: store, opts: opts}
	handle := p.handleBatch
	if opts.Version > 0 {
		ver, err := newVersioning(store, name, opts)
		if err != nil {
			return nil, err
		}
		p.ver, handle = ver, p.handleActiveBatch
	}
	proc, handlers, err := processing.NewKind[*gorm.DB]("projector", store, name, handle, opts.Processing)
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
	on := func(t *processing.Handlers[*gorm.DB]) error {
		return processing.On(t, processing.HandlerFunc[*gorm.DB, E](h))
	}
	if err := on(p.handlers); err != nil {
		return err
	}
	var zero E
	typ, _ := p.store.Registry().TypeName(zero) // registered: On checked
	p.mu.Lock()
	defer p.mu.Unlock()
	p.regs = append(p.regs, on)
	p.types = append(p.types, typ)
	return nil
}

// MustOn is [On] for set-up code: it panics where On fails.
func MustOn[E any](p *Projector, h HandlerFunc[E]) {
	if err := On(p, h); err != nil {
		panic(err)
	}
}

// Migrate creates the position table and runs the Setup hook, in a
// transaction. It is safe to run again.
//
// For a versioned projector, Migrate runs Setup for the tables of the
// version the code declares (Options.Version). A projector that has no
// version yet gets it at once, active, with its views (a projector that
// was not versioned before hands its tables over first, as version 0:
// they serve until the new version has caught up). When another version
// is active, the code's version is recorded as building: a running
// projector builds it beside the active one and swaps it in once it has
// caught up. When a newer version than the code's is active (an old
// process starting after a deployment), Migrate changes nothing.
func (p *Projector) Migrate(ctx context.Context) error {
	if err := p.Processor.Migrate(ctx); err != nil {
		return fmt.Errorf("projector: %s: %w", p.Name(), err)
	}
	if p.ver != nil {
		if _, err := p.ensure(ctx, ensureMigrate); err != nil {
			return fmt.Errorf("projector: %s: migrate versions: %w", p.Name(), err)
		}
		return nil
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
//
// A versioned projector's Reset empties the tables of its active version,
// which the queries see at once: [Projector.Rebuild] builds a new one
// beside it instead.
func (p *Projector) Reset(ctx context.Context) error {
	if p.ver != nil && p.ver.running.Load() {
		return fmt.Errorf("projector: reset %s: %w", p.Name(), processing.ErrRunning)
	}
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
		tables, err := p.activeTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
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
	return p.handleWith(ctx, p.handlers, nil, batch, cp)
}

// scope prepares a batch's transaction: it checks what must hold for the
// batch to commit and returns the context the hooks and handlers run with.
type scope func(ctx context.Context, tx *gorm.DB) (context.Context, error)

// handleWith handles a batch in one transaction with the handlers of h,
// in the scope sc (none when nil).
func (p *Projector) handleWith(ctx context.Context, h *processing.Handlers[*gorm.DB], sc scope, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	err := p.commit(ctx, h, sc, batch.Events, batch.Through, cp)
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
	if perr := p.commit(ctx, h, sc, batch.Events[:fa.index], through, cp); perr != nil {
		return 0, fa.err
	}
	return through, fa.err
}

// commit handles events in one transaction and saves through as the
// position.
func (p *Projector) commit(ctx context.Context, h *processing.Handlers[*gorm.DB], sc scope, events []event.Event, through int64, cp processing.Checkpoint) error {
	p.batch.Lock()
	defer p.batch.Unlock()
	return p.store.Transaction(ctx, func(tx *gorm.DB) error {
		hctx, err := p.begin(ctx, tx, sc)
		if err != nil {
			return err
		}
		if err := p.handle(hctx, tx, h, events); err != nil {
			return err
		}
		if err := p.flush(hctx, tx); err != nil {
			return err
		}
		return cp.SaveWithParking(ctx, through, func(ctx context.Context, name string, epoch, from, to int64) (bool, error) {
			return p.store.SavePositionTx(ctx, tx, name, epoch, from, to)
		}, p.parkTx(tx))
	})
}

// begin opens a batch's work in tx: the scope, then the Begin hook. It
// returns the context of the hooks and handlers.
func (p *Projector) begin(ctx context.Context, tx *gorm.DB, sc scope) (context.Context, error) {
	if sc != nil {
		var err error
		if ctx, err = sc(ctx, tx); err != nil {
			return ctx, err
		}
	}
	if p.opts.Begin != nil {
		if err := p.opts.Begin(ctx, tx); err != nil {
			return ctx, fmt.Errorf("begin hook: %w", err)
		}
	}
	return ctx, nil
}

// handle hands events to the handlers of h in tx; a failure is a
// [*failedAt].
func (p *Projector) handle(ctx context.Context, tx *gorm.DB, h *processing.Handlers[*gorm.DB], events []event.Event) error {
	for i, e := range events {
		if err := h.Handle(ctx, tx, e); err != nil {
			return &failedAt{index: i, err: err}
		}
	}
	return nil
}

// flush runs the Flush hook.
func (p *Projector) flush(ctx context.Context, tx *gorm.DB) error {
	if p.opts.Flush != nil {
		if err := p.opts.Flush(ctx, tx); err != nil {
			return fmt.Errorf("flush hook: %w", err)
		}
	}
	return nil
}
