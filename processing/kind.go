package processing

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"

	"github.com/cairnhq/cairn/event"
)

// TypedStore is a [Store] whose registry names the event types that typed
// handlers ([On]) are registered for. *eventstore.Store implements it.
type TypedStore interface {
	Store
	// Registry returns the registry the store decodes events with.
	Registry() *event.Registry
}

// BatchFunc handles a batch of events, as [Handler.HandleBatch] does.
type BatchFunc func(ctx context.Context, b event.Batch, cp Checkpoint) (saved int64, err error)

// HandlerFunc handles one event of type E, given its decoded data and the
// argument of type A that its kind of processor passes every handler (a
// projector's transaction, a reactor's emitter).
type HandlerFunc[A, E any] func(ctx context.Context, a A, e event.Event, data E) error

// Handlers is the table of typed handlers of a processor made by
// [NewKind]: at most one per event type, each taking an argument of type
// A. Handlers are registered with [On] until the processor first runs;
// from then on the table is frozen.
type Handlers[A any] struct {
	kind string // for errors
	name string
	reg  *event.Registry
	p    *Processor   // for middleware
	mw   []Middleware // Options.Middleware

	mu     sync.Mutex
	frozen bool
	// byType is read without mu once frozen.
	byType map[string]func(ctx context.Context, a A, e event.Event) error
	types  []string
	// perEvent: the kind allows events to be handled one at a time
	// (concurrency.go).
	perEvent func(e event.Event) A
}

// NewKind returns a processor of a kind built on this package — "projector"
// or "reactor", as [Processor.Kind] reports it — named name over store,
// with an empty table of typed handlers. handle is what makes the kind what
// it is: how a batch's events are handed to the handlers (with
// [Handlers.Handle]) and when the position is saved. The processor reads
// only the event types that have a handler, and refuses to run with none.
//
// A kind embeds the *Processor for its name, status, runs and migration,
// and keeps the table to register handlers in.
func NewKind[A any](kind string, store TypedStore, name string, handle BatchFunc, opts Options) (*Processor, *Handlers[A], error) {
	if store == nil {
		return nil, nil, fmt.Errorf("%s: new %q: %w: nil store", kind, name, ErrInvalid)
	}
	t := &Handlers[A]{kind: kind, name: name, reg: store.Registry(), byType: make(map[string]func(context.Context, A, event.Event) error)}
	p, err := New(store, name, kindHandler[A]{t: t, handle: handle}, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", kind, err)
	}
	p.kind = kind
	t.p, t.mw = p, p.opts.Middleware
	return p, t, nil
}

// kindHandler is the Handler of a processor made by NewKind.
type kindHandler[A any] struct {
	t      *Handlers[A]
	handle BatchFunc
}

func (h kindHandler[A]) Types() []string {
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	return append([]string(nil), h.t.types...)
}

func (h kindHandler[A]) HandleBatch(ctx context.Context, b event.Batch, cp Checkpoint) (int64, error) {
	return h.handle(ctx, b, cp)
}

// start freezes the table before a run; a table without handlers cannot
// run.
func (h kindHandler[A]) start() error {
	t := h.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frozen = true
	if len(t.byType) == 0 {
		return fmt.Errorf("%w: no handlers", ErrInvalid)
	}
	return nil
}

// starter is implemented by handlers that must be ready before a run.
type starter interface{ start() error }

// On registers h as the handler of t's processor for events of type E,
// which must be registered with the store's registry. It fails with an
// error matching [ErrInvalid] for a type that is not registered or has a
// handler already, and once the processor has started to run.
func On[E, A any](t *Handlers[A], h HandlerFunc[A, E]) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: On[%v] for %s: %w", t.kind, reflect.TypeFor[E](), t.name, err)
	}
	var zero E
	typ, err := t.reg.TypeName(zero)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.frozen:
		return fail(fmt.Errorf("%w: the %s has started", ErrInvalid, t.kind))
	case t.byType[typ] != nil:
		return fail(fmt.Errorf("%w: event type %q has a handler already", ErrInvalid, typ))
	}
	t.byType[typ] = func(ctx context.Context, a A, e event.Event) error {
		data, err := dataAs[E](e)
		if err != nil {
			return err
		}
		return h(ctx, a, e, data)
	}
	t.types = append(t.types, typ)
	return nil
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
	return zero, fmt.Errorf("data of type %T, want %v", e.Data, reflect.TypeFor[E]())
}

// Handle calls the handler of e's type with a, and returns its error as an
// [*EventError] naming e; a panic of the handler is recovered and returned
// the same way, wrapping a [*PanicError]. An event of a type without a
// handler is ignored (the processor does not read such events). Call it
// only from the processor's batches: the table is frozen then.
func (t *Handlers[A]) Handle(ctx context.Context, a A, e event.Event) error {
	h := t.byType[e.Type]
	if h == nil {
		return nil
	}
	ctx, span := t.p.startEvent(ctx, e)
	err := t.handle(ctx, a, e, h)
	endEvent(span, err)
	return err
}

// handle is Handle within the event's span.
func (t *Handlers[A]) handle(ctx context.Context, a A, e event.Event, h func(ctx context.Context, a A, e event.Event) error) error {
	if len(t.mw) > 0 {
		return t.handleWrapped(ctx, a, e, h)
	}
	if err := Guard(func() error { return h(ctx, a, e) }); err != nil {
		return NewEventError(e, err)
	}
	return nil
}

// Guard calls fn and returns its error. A panic in fn is recovered and
// returned as a [*PanicError] holding the panic's value and stack, and
// nothing else: callers can tell a panic from an error fn returned by
// asserting the error's type (without errors.As).
func Guard(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
