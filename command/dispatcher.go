package command

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

var (
	// ErrNoHandler reports a command whose type has no registered handler.
	ErrNoHandler = errors.New("command: no handler")
	// ErrInvalid reports a command whose Validate method returned an error
	// (see [Validation]). The error's chain holds that error too.
	ErrInvalid = errors.New("command: invalid")
)

// Handler handles a command and reports what it wrote. cmd is any value; a
// [Dispatcher] passes each handler the commands of the one type it was
// registered for.
type Handler interface {
	Handle(ctx context.Context, cmd any) (Result, error)
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, cmd any) (Result, error)

// Handle calls f(ctx, cmd).
func (f HandlerFunc) Handle(ctx context.Context, cmd any) (Result, error) { return f(ctx, cmd) }

var _ Handler = HandlerFunc(nil)

// Middleware wraps a handler in another that runs code around it, such as
// [Logging], [Validation] and [Correlation].
type Middleware func(next Handler) Handler

// Dispatcher routes commands to the handler registered for their Go type,
// through its middleware. Register handlers with [Handle] and middleware
// with [Dispatcher.Use] at start-up. The zero value is ready to use, like
// an http.ServeMux:
//
//	var d command.Dispatcher
//	command.MustHandle(&d, completeTodo)
//
// A Dispatcher is safe for concurrent use, registration included. It must
// not be copied after first use.
type Dispatcher struct {
	mu         sync.RWMutex
	handlers   map[reflect.Type]Handler
	middleware []Middleware
}

// NewDispatcher returns a dispatcher with no handlers and no middleware,
// the same as a zero Dispatcher.
func NewDispatcher() *Dispatcher { return new(Dispatcher) }

// Handle registers fn as the handler of commands of type C on d. Commands
// are plain values of any type; Dispatch also routes a *C to fn (a nil *C
// is an error). Registering a second handler for C, an interface type or a
// nil function is an error; [MustHandle] panics on it instead.
func Handle[C any](d *Dispatcher, fn func(ctx context.Context, cmd C) (Result, error)) error {
	t := reflect.TypeFor[C]()
	if d == nil {
		return fmt.Errorf("command: handle %v: nil dispatcher", t)
	}
	if fn == nil {
		return fmt.Errorf("command: handle %v: nil function", t)
	}
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("command: handle %v: an interface type, want a concrete command type", t)
	}
	h := HandlerFunc(func(ctx context.Context, cmd any) (Result, error) {
		c, ok := cmd.(C)
		if !ok {
			p, isPtr := cmd.(*C)
			if !isPtr || p == nil {
				return Result{}, fmt.Errorf("command: handler of %v got %T", t, cmd)
			}
			c = *p
		}
		return fn(ctx, c)
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.handlers[t]; dup {
		return fmt.Errorf("command: handle %v: a handler is registered already", t)
	}
	if d.handlers == nil {
		d.handlers = make(map[reflect.Type]Handler)
	}
	d.handlers[t] = h
	return nil
}

// MustHandle is like [Handle] but panics on error. It is meant for
// start-up code, where a failing registration is a programming mistake.
func MustHandle[C any](d *Dispatcher, fn func(ctx context.Context, cmd C) (Result, error)) {
	if err := Handle(d, fn); err != nil {
		panic(err)
	}
}

// Use appends middleware to d's chain. The first middleware added is the
// outermost: it sees the command first and the result last. Middleware
// wraps every handler, registered before or after.
func (d *Dispatcher) Use(mw ...Middleware) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.middleware = append(d.middleware, mw...)
}

// Dispatch runs the handler registered for cmd's type (or, for a pointer,
// its element type) through the middleware, and returns what it wrote (its
// [Result]: the events and the position of the last one) or its error. A
// command type with no handler gives an error matching [ErrNoHandler] that
// names the type.
func (d *Dispatcher) Dispatch(ctx context.Context, cmd any) (Result, error) {
	if cmd == nil {
		return Result{}, fmt.Errorf("%w: nil command", ErrNoHandler)
	}
	t := reflect.TypeOf(cmd)
	d.mu.RLock()
	h, ok := d.handlers[t]
	if !ok && t.Kind() == reflect.Pointer {
		h, ok = d.handlers[t.Elem()]
		if ok && reflect.ValueOf(cmd).IsNil() {
			d.mu.RUnlock()
			return Result{}, fmt.Errorf("command: dispatch a nil %v", t)
		}
	}
	mw := d.middleware
	d.mu.RUnlock()
	if !ok {
		return Result{}, fmt.Errorf("%w for command type %v", ErrNoHandler, t)
	}
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h.Handle(ctx, cmd)
}
