package reactor

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// Store is what a reactor needs of an event store: a processing store that
// appends the events reactors emit, and whose registry names the handlers'
// event types. *eventstore.Store implements it.
type Store interface {
	processing.Store
	event.Appender
	// Registry returns the registry the store decodes events with.
	Registry() *event.Registry
}

// Options configures a [Reactor]. The zero value works.
type Options struct {
	// Processing configures the processor: batch size, error handler,
	// logger and error callback. The batch size bounds the side effects
	// repeated after a crash: the position is saved once per batch.
	Processing processing.Options
}

// Validate reports options that cannot work.
func (o Options) Validate() error { return o.Processing.Validate() }

// HandlerFunc reacts to one event of type E: it triggers side effects and
// emits new events through emit. Data is the event's decoded data.
//
// A handler may run more than once for the same event (after a failure or
// a crash), so its side effects should be idempotent or tolerate repeats;
// the events it emits are stored once as long as it emits the same events
// in the same order each time.
type HandlerFunc[E any] func(ctx context.Context, e event.Event, data E, emit *Emitter) error

type handler func(ctx context.Context, e event.Event, emit *Emitter) error

// Reactor reacts to events with side effects and new events. Register
// handlers with [On] before Run. Its methods are safe for concurrent use.
type Reactor struct {
	store Store
	opts  Options
	proc  *processing.Processor
	ns    uuid.UUID // namespace of emitted event IDs

	mu       sync.Mutex
	frozen   bool
	handlers map[string]handler
	types    []string
}

// idNamespace is the namespace of the name-based (SHA-1) UUIDs given to
// emitted events.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/cairnhq/cairn/reactor"))

// New returns a reactor named name over store. The name identifies the
// reactor's position and goes into the IDs of the events it emits: it must
// be unique among the store's processors and never change. New does not
// touch the database; call [Reactor.Migrate] before [Reactor.Run].
func New(store Store, name string, opts Options) (*Reactor, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("reactor: new %q: %w", name, err)
	}
	if store == nil {
		return nil, fmt.Errorf("reactor: new %q: %w: nil store", name, processing.ErrInvalid)
	}
	r := &Reactor{store: store, opts: opts, handlers: make(map[string]handler)}
	proc, err := processing.New(store, name, batchHandler{r}, opts.Processing)
	if err != nil {
		return nil, fmt.Errorf("reactor: %w", err)
	}
	r.proc = proc
	return r, nil
}

// On registers h as r's handler for events of type E, which must be
// registered with the store's registry. Registering a second handler for a
// type, an unregistered type, or any handler once r has started to run is
// a programming mistake, and panics.
func On[E any](r *Reactor, h HandlerFunc[E]) {
	var zero E
	name, err := r.store.Registry().TypeName(zero)
	if err != nil {
		panic(fmt.Sprintf("reactor: On[%v] for %s: %v", reflect.TypeFor[E](), r.Name(), err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.frozen:
		panic(fmt.Sprintf("reactor: On[%v] for %s: reactor has started", reflect.TypeFor[E](), r.Name()))
	case r.handlers[name] != nil:
		panic(fmt.Sprintf("reactor: On[%v] for %s: event type %q has a handler already", reflect.TypeFor[E](), r.Name(), name))
	}
	r.handlers[name] = func(ctx context.Context, e event.Event, emit *Emitter) error {
		var data E
		switch d := e.Data.(type) {
		case E:
			data = d
		case *E:
			if d == nil {
				return fmt.Errorf("reactor: nil data, want %v", reflect.TypeFor[E]())
			}
			data = *d
		default:
			return fmt.Errorf("reactor: data of type %T, want %v", e.Data, reflect.TypeFor[E]())
		}
		return h(ctx, e, data, emit)
	}
	r.types = append(r.types, name)
}

// Name returns the reactor's name.
func (r *Reactor) Name() string { return r.proc.Name() }

// Status returns the reactor's state, position and last error.
func (r *Reactor) Status() processing.Status { return r.proc.Status() }

// WaitFor blocks until the reactor has handled the events up to position;
// see [processing.Processor.WaitFor].
func (r *Reactor) WaitFor(ctx context.Context, position int64) error {
	return r.proc.WaitFor(ctx, position)
}

// Migrate creates the position table if it does not exist.
func (r *Reactor) Migrate(ctx context.Context) error {
	if err := r.proc.Migrate(ctx); err != nil {
		return fmt.Errorf("reactor: %s: %w", r.Name(), err)
	}
	return nil
}

// Run reacts to events until ctx ends, and then returns nil; see
// [processing.Processor.Run] for retries and failures. Events are handled
// one at a time, in order, and the position is saved after each batch
// (and before a failing event), so after a crash the events since the last
// saved position are handled again: side effects are at-least-once, emitted
// events exactly-once.
func (r *Reactor) Run(ctx context.Context) error {
	if err := r.start(); err != nil {
		return err
	}
	return r.proc.Run(ctx)
}

// RunOwned is [Reactor.Run] for a reactor shared by several processes: it
// reacts only while this process holds the reactor's lease; see
// [processing.Processor.RunOwned].
func (r *Reactor) RunOwned(ctx context.Context, o processing.Ownership) error {
	if err := r.start(); err != nil {
		return err
	}
	return r.proc.RunOwned(ctx, o)
}

// Kind returns "reactor", the kind of processor r is.
func (r *Reactor) Kind() string { return "reactor" }

// start freezes the handlers before a run.
func (r *Reactor) start() error {
	r.mu.Lock()
	r.frozen = true
	n := len(r.handlers)
	r.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("reactor: run %s: %w: no handlers", r.Name(), processing.ErrInvalid)
	}
	return nil
}

// Emitter appends the events a handler emits, as caused by the event being
// handled: each gets the triggering event's ID as causation ID, its
// correlation ID (or its ID, when it has none) as correlation ID, and an ID
// derived from the reactor's name, the triggering event's ID and the
// emitted event's index among those emitted for it. Appending the same
// events again is then a no-op, so events emitted before a crash or a
// failure are not stored twice when the event is handled again.
//
// An Emitter is valid only during the handler call it is passed to, and
// is not safe for concurrent use.
type Emitter struct {
	r     *Reactor
	cause event.Event
	n     int // events emitted so far
}

// Emit appends events to the stream, whatever its version, and returns
// them as stored (or as stored by an earlier attempt).
func (em *Emitter) Emit(ctx context.Context, streamID string, events ...any) ([]event.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(events))
	for i := range events {
		ids[i] = em.r.eventID(em.cause.ID, em.n+i)
	}
	corr := em.cause.CorrelationID
	if corr == "" {
		corr = em.cause.ID.String()
	}
	stored, err := em.r.store.Append(ctx, streamID, event.Any, events,
		event.WithIDs(ids...),
		event.WithCausationID(em.cause.ID.String()),
		event.WithCorrelationID(corr))
	if err != nil {
		return nil, fmt.Errorf("reactor: emit to %q: %w", streamID, err)
	}
	em.n += len(events)
	return stored, nil
}

// eventID returns the ID of the index-th event emitted for the event cause.
func (r *Reactor) eventID(cause uuid.UUID, index int) uuid.UUID {
	name := make([]byte, 0, len(r.Name())+50)
	name = append(name, r.Name()...)
	name = append(name, 0)
	name = append(name, cause.String()...)
	name = append(name, 0)
	name = strconv.AppendInt(name, int64(index), 10)
	return uuid.NewSHA1(idNamespace, name)
}

// batchHandler adapts a Reactor to processing.Handler without adding
// methods to the Reactor's API.
type batchHandler struct{ r *Reactor }

var _ processing.Handler = batchHandler{}

func (b batchHandler) Types() []string {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	return append([]string(nil), b.r.types...)
}

// saveTimeout bounds the save of a reactor's position after its context
// has ended.
const saveTimeout = 5 * time.Second

func (b batchHandler) HandleBatch(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	r := b.r
	for i, e := range batch.Events {
		err := ctx.Err()
		if err == nil {
			if h := r.handlers[e.Type]; h != nil {
				if err = call(ctx, h, e, &Emitter{r: r, cause: e}); err != nil {
					err = processing.NewEventError(e, err)
				}
			}
		}
		if err != nil {
			if i == 0 {
				return 0, err
			}
			// Save the events handled so far, so that a retry starts
			// at the failing one.
			// (Even when ctx has ended: stopping is when it matters.)
			through := batch.Events[i-1].Position
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
			serr := cp.Save(sctx, through)
			cancel()
			if serr != nil {
				return 0, err
			}
			return through, err
		}
	}
	if err := cp.Save(ctx, batch.Through); err != nil {
		return 0, err
	}
	return batch.Through, nil
}

// call runs a handler, turning a panic into an error.
func call(ctx context.Context, h handler, e event.Event, emit *Emitter) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &processing.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(ctx, e, emit)
}
