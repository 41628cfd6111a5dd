package projector

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"runtime/debug"
	"sync"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// Store is what a projector needs of an event store: a processing store
// whose registry names the handlers' event types, and transactions of its
// database in which the handlers' writes commit together with the
// position. *eventstore.Store implements it.
type Store interface {
	processing.Store
	// Registry returns the registry the store decodes events with.
	Registry() *event.Registry
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

type handler func(ctx context.Context, tx *gorm.DB, e event.Event) error

// Projector builds a read model from events: its handlers write tables in
// the store's database, and each batch's writes commit in one transaction
// with the projector's position. Register handlers with [On] before Run.
// Its methods are safe for concurrent use.
type Projector struct {
	store Store
	opts  Options
	proc  *processing.Processor

	mu       sync.Mutex
	frozen   bool
	handlers map[string]handler
	types    []string
}

// New returns a projector named name over store. The name identifies the
// projector's position: unique among the store's processors, and stable
// across restarts. New does not touch the database; call
// [Projector.Migrate] before [Projector.Run].
func New(store Store, name string, opts Options) (*Projector, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("projector: new %q: %w", name, err)
	}
	if store == nil {
		return nil, fmt.Errorf("projector: new %q: %w: nil store", name, processing.ErrInvalid)
	}
	p := &Projector{store: store, opts: opts, handlers: make(map[string]handler)}
	proc, err := processing.New(store, name, batchHandler{p}, opts.Processing)
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	p.proc = proc
	return p, nil
}

// On registers h as p's handler for events of type E, which must be
// registered with the store's registry. Registering a second handler for a
// type, an unregistered type, or any handler once p has started to run is
// a programming mistake, and panics.
func On[E any](p *Projector, h HandlerFunc[E]) {
	var zero E
	name, err := p.store.Registry().TypeName(zero)
	if err != nil {
		panic(fmt.Sprintf("projector: On[%v] for %s: %v", reflect.TypeFor[E](), p.Name(), err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.frozen:
		panic(fmt.Sprintf("projector: On[%v] for %s: projector has started", reflect.TypeFor[E](), p.Name()))
	case p.handlers[name] != nil:
		panic(fmt.Sprintf("projector: On[%v] for %s: event type %q has a handler already", reflect.TypeFor[E](), p.Name(), name))
	}
	p.handlers[name] = func(ctx context.Context, tx *gorm.DB, e event.Event) error {
		data, err := dataAs[E](e)
		if err != nil {
			return err
		}
		return h(ctx, tx, e, data)
	}
	p.types = append(p.types, name)
}

// dataAs returns the event's data as an E, from an E or a non-nil *E.
func dataAs[E any](e event.Event) (E, error) {
	switch d := e.Data.(type) {
	case E:
		return d, nil
	case *E:
		if d != nil {
			return *d, nil
		}
	}
	var zero E
	return zero, fmt.Errorf("projector: data of type %T, want %v", e.Data, reflect.TypeFor[E]())
}

// Name returns the projector's name.
func (p *Projector) Name() string { return p.proc.Name() }

// Status returns the projector's state, position and last error.
func (p *Projector) Status() processing.Status { return p.proc.Status() }

// WaitFor blocks until the projector has committed the events up to
// position, so that its tables show them; see [processing.Processor.WaitFor].
func (p *Projector) WaitFor(ctx context.Context, position int64) error {
	return p.proc.WaitFor(ctx, position)
}

// Migrate creates the position table and runs the Setup hook, in a
// transaction. It is safe to run again.
func (p *Projector) Migrate(ctx context.Context) error {
	if err := p.proc.Migrate(ctx); err != nil {
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
// moves the projector's position back to 0, in one transaction, so that
// the next Run rebuilds the projection from the first event. An instance
// of the projector running in another process stops with
// [processing.ErrFenced] at its next batch; Reset fails with
// [processing.ErrRunning] while p itself runs.
func (p *Projector) Reset(ctx context.Context) error {
	err := p.store.Transaction(ctx, func(tx *gorm.DB) error {
		for _, t := range p.opts.Tables {
			if err := tx.Exec("DELETE FROM " + t).Error; err != nil {
				return fmt.Errorf("delete from %s: %w", t, err)
			}
		}
		return p.proc.ResetWith(ctx, func(ctx context.Context, name string) error {
			return p.store.ResetPositionTx(ctx, tx, name)
		})
	})
	if err != nil {
		return fmt.Errorf("projector: reset %s: %w", p.Name(), err)
	}
	return nil
}

// Run projects events until ctx ends, and then returns nil; see
// [processing.Processor.Run] for retries and failures. Each batch (up to
// Options.Processing.BatchSize events) is one transaction: the handlers'
// writes and the new position commit together or not at all, so every
// event is projected exactly once, whatever fails or crashes. When a
// handler fails, the events before it in the batch are committed first, so
// the retry starts at the failing event.
func (p *Projector) Run(ctx context.Context) error {
	if err := p.start(); err != nil {
		return err
	}
	return p.proc.Run(ctx)
}

// RunOwned is [Projector.Run] for a projector shared by several processes:
// it projects only while this process holds the projector's lease; see
// [processing.Processor.RunOwned].
func (p *Projector) RunOwned(ctx context.Context, o processing.Ownership) error {
	if err := p.start(); err != nil {
		return err
	}
	return p.proc.RunOwned(ctx, o)
}

// Kind returns "projector", the kind of processor p is.
func (p *Projector) Kind() string { return "projector" }

// start freezes the handlers before a run.
func (p *Projector) start() error {
	p.mu.Lock()
	p.frozen = true
	n := len(p.handlers)
	p.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("projector: run %s: %w: no handlers", p.Name(), processing.ErrInvalid)
	}
	return nil
}

// batchHandler adapts a Projector to processing.Handler without adding
// methods to the Projector's API.
type batchHandler struct{ p *Projector }

var _ processing.Handler = batchHandler{}

func (b batchHandler) Types() []string {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	return append([]string(nil), b.p.types...)
}

// failedAt is the error of the index-th event of a batch.
type failedAt struct {
	index int
	err   error
}

func (f *failedAt) Error() string { return f.err.Error() }
func (f *failedAt) Unwrap() error { return f.err }

func (b batchHandler) HandleBatch(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	p := b.p
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
			h := p.handlers[e.Type]
			if h == nil {
				continue // not asked for; cannot happen with the type filter
			}
			if err := call(ctx, h, tx, e); err != nil {
				return &failedAt{index: i, err: processing.NewEventError(e, err)}
			}
		}
		if p.opts.Flush != nil {
			if err := p.opts.Flush(ctx, tx); err != nil {
				return fmt.Errorf("flush hook: %w", err)
			}
		}
		return cp.SaveWith(ctx, through, func(ctx context.Context, name string, epoch, from, to int64) (bool, error) {
			return p.store.SavePositionTx(ctx, tx, name, epoch, from, to)
		})
	})
}

// call runs a handler, turning a panic into an error.
func call(ctx context.Context, h handler, tx *gorm.DB, e event.Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &processing.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(ctx, tx, e)
}
