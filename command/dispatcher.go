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

// Handler handles a command. cmd is any value; a [Dispatcher] passes each
// handler the commands of the one type it was registered for.
type Handler interface {
	Handle(ctx context.Context, cmd any) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, cmd any) error

// Handle calls f(ctx, cmd).
func (f HandlerFunc) Handle(ctx context.Context, cmd any) error { return f(ctx, cmd) }

var _ Handler = HandlerFunc(nil)

// Middleware wraps a handler in another that runs code around it, such as
// [Logging], [Validation] and [Correlation].
type Middleware func(next Handler) Handler

// Dispatcher routes commands to the handler registered for their Go type,
// through its middleware. Register handlers with [Handle] and middleware
// with [Dispatcher.Use] at start-up; a Dispatcher is safe for concurrent
// use, registration included. The zero value is not ready: use
// [NewDispatcher].
type Dispatcher struct {
	mu         sync.RWMutex
	handlers   map[reflect.Type]Handler
	middleware []Middleware
}

// NewDispatcher returns a dispatcher with no handlers and no middleware.
func NewDispatcher() *Dispatcher {
	return &Dispatcher{handlers: make(map[reflect.Type]Handler)}
}

// Handle registers fn as the handler of commands of type C on d. Commands
// are plain values of any type; Dispatch also routes a *C to fn (a nil *C
// is an error). Registering a second handler for C, an interface type or a
// nil function is an error.
func Handle[C any](d *Dispatcher, fn func(ctx context.Context, cmd C) error) error {
	t := reflect.TypeFor[C]()
	if fn == nil {
		return fmt.Errorf("command: handle %v: nil function", t)
	}
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("command: handle %v: an interface type, want a concrete command type", t)
	}
	h := HandlerFunc(func(ctx context.Context, cmd any) error {
		c, ok := cmd.(C)
		if !ok {
			p, isPtr := cmd.(*C)
			if !isPtr || p == nil {
				return fmt.Errorf("command: handler of %v got %T", t, cmd)
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
	d.handlers[t] = h
	return nil
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
// its element type) through the middleware and returns its error. A command
// type with no handler gives an error matching [ErrNoHandler] that names
// the type.
func (d *Dispatcher) Dispatch(ctx context.Context, cmd any) error {
	if cmd == nil {
		return fmt.Errorf("%w: nil command", ErrNoHandler)
	}
	t := reflect.TypeOf(cmd)
	d.mu.RLock()
	h, ok := d.handlers[t]
	if !ok && t.Kind() == reflect.Pointer {
		h, ok = d.handlers[t.Elem()]
		if ok && reflect.ValueOf(cmd).IsNil() {
			d.mu.RUnlock()
			return fmt.Errorf("command: dispatch: nil %v", t)
		}
	}
	mw := d.middleware
	d.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w for command type %v", ErrNoHandler, t)
	}
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h.Handle(ctx, cmd)
}
