package aggregate

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/cairnhq/cairn/event"
)

// Handler is the handler of one event type for aggregates of type T, as a
// typed function that is called directly, without reflection. Make one
// with [On] or [OnErr] from the handler's method expression, in the
// Handlers method of an aggregate that implements [Handlers].
type Handler[T any] struct {
	event reflect.Type // E
	code  uintptr      // the code pointer of fn, to check it is the On… method for E
	// try calls the handler if e is an E or a *E, and reports whether it
	// was.
	try func(agg *T, e any) (bool, error)
}

// On returns the handler fn, the method expression of an On… method that
// returns nothing, such as (*Todo).OnTodoAdded.
func On[T, E any](fn func(*T, E)) Handler[T] {
	return Handler[T]{event: reflect.TypeFor[E](), code: codeOf(fn), try: func(agg *T, e any) (bool, error) {
		switch e := e.(type) {
		case E:
			fn(agg, e)
		case *E:
			if e == nil {
				return true, nilEvent[E]()
			}
			fn(agg, *e)
		default:
			return false, nil
		}
		return true, nil
	}}
}

// OnErr returns the handler fn, the method expression of an On… method that
// returns an error, such as (*Todo).OnTodoReopened.
func OnErr[T, E any](fn func(*T, E) error) Handler[T] {
	return Handler[T]{event: reflect.TypeFor[E](), code: codeOf(fn), try: func(agg *T, e any) (bool, error) {
		switch e := e.(type) {
		case E:
			return true, fn(agg, e)
		case *E:
			if e == nil {
				return true, nilEvent[E]()
			}
			return true, fn(agg, *e)
		}
		return false, nil
	}}
}

// nilEvent reports a nil *E event.
func nilEvent[E any]() error { return fmt.Errorf("nil %v event", reflect.TypeFor[*E]()) }

// codeOf returns the code pointer of a func value, or 0 for nil.
func codeOf(fn any) uintptr {
	v := reflect.ValueOf(fn)
	if v.IsNil() {
		return 0
	}
	return v.Pointer()
}

// Handlers is implemented by aggregate types that list their handlers for
// direct calls. It is optional: without it, each event costs a
// reflect.Value.Call of its handler (some 0.15–0.2 µs, several percent of a
// load from a database); with it, a type switch and a direct call, within
// some 20 ns of a hand-written type switch. The list
// must name each On… method of *T once, by its method expression, with On
// or OnErr as its signature says:
//
//	func (*Todo) Handlers() []aggregate.Handler[Todo] {
//		return []aggregate.Handler[Todo]{
//			aggregate.On((*Todo).OnTodoAdded),
//			aggregate.OnErr((*Todo).OnTodoReopened),
//		}
//	}
//
// [NewRepository], [New], [Check] and the first [Apply] to an aggregate
// made otherwise check the list against the methods and refuse, with
// [ErrInvalidHandler], a list that leaves out a method, names one twice,
// or holds a function that is not the On… method for its event type. The
// list is read once per repository (or per aggregate not loaded by one),
// so Handlers may build it each time it is called.
type Handlers[T any] interface {
	Handlers() []Handler[T]
}

// direct holds the direct calls of an aggregate type's handlers. An event
// is offered to each in turn, and each checks its type with a type switch,
// as a hand-written one would: an aggregate has a handful of handlers, and
// finding one in a map by reflect.TypeOf(e) costs more than the call itself
// (BenchmarkDispatch).
type direct[T any] []directCall[T]

// directCall is the direct call of one handler.
type directCall[T any] struct {
	typ    reflect.Type // E
	try    func(agg *T, e any) (bool, error)
	method string
}

// has reports whether d has a handler for events of type t.
func (d direct[T]) has(t reflect.Type) bool {
	for _, dc := range d {
		if dc.typ == t {
			return true
		}
	}
	return false
}

// tableFor returns the dispatch table of the aggregate type T, checked as
// newTable does, with the direct calls of T's Handlers list if *T
// implements [Handlers].
func tableFor[T any](reg *event.Registry) (*table, error) {
	tab, err := newTable(reflect.TypeFor[*T](), reg)
	if err != nil {
		return nil, err
	}
	hs, ok := any((*T)(nil)).(Handlers[T])
	if !ok {
		return tab, nil
	}
	d, err := directOf(tab, hs.Handlers())
	if err != nil {
		return nil, err
	}
	tab.direct = d
	return tab, nil
}

// directOf checks list against the handlers found by reflection in tab and
// returns their direct calls.
func directOf[T any](tab *table, list []Handler[T]) (direct[T], error) {
	d := make(direct[T], 0, len(list))
	var errs []error
	for i, h := range list {
		if h.try == nil || h.code == 0 {
			errs = append(errs, fmt.Errorf("%w: (%v).Handlers()[%d] is a zero or nil Handler: make it with aggregate.On or aggregate.OnErr",
				ErrInvalidHandler, tab.ptr, i))
			continue
		}
		en, ok := tab.byType[h.event]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: (%v).Handlers() lists a handler of %v, but %v has no On… method taking it",
				ErrInvalidHandler, tab.ptr, h.event, tab.ptr))
			continue
		}
		if h.code != en.h.fn.Pointer() {
			errs = append(errs, fmt.Errorf("%w: (%v).Handlers() lists a function for %v that is not (%v).%s: list the method expression",
				ErrInvalidHandler, tab.ptr, h.event, tab.ptr, en.h.method))
			continue
		}
		if d.has(h.event) {
			errs = append(errs, fmt.Errorf("%w: (%v).Handlers() lists (%v).%s twice",
				ErrInvalidHandler, tab.ptr, tab.ptr, en.h.method))
			continue
		}
		d = append(d, directCall[T]{typ: h.event, try: h.try, method: en.h.method})
	}
	for _, h := range tab.handlers {
		if !listed(list, h.event) {
			errs = append(errs, fmt.Errorf("%w: (%v).Handlers() leaves out (%v).%s",
				ErrInvalidHandler, tab.ptr, tab.ptr, h.method))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// listed reports whether list has a handler for event type e.
func listed[T any](list []Handler[T], e reflect.Type) bool {
	for _, h := range list {
		if h.event == e {
			return true
		}
	}
	return false
}

// dispatch calls agg's handler for e: directly when the table has direct
// calls, else through reflection on self (agg as a reflect.Value).
func dispatch[T any](tab *table, agg *T, self reflect.Value, e any) error {
	if d, ok := tab.direct.(direct[T]); ok {
		for _, dc := range d {
			if ok, err := dc.try(agg, e); ok {
				if err != nil {
					return fmt.Errorf("(%v).%s: %w", tab.ptr, dc.method, err)
				}
				return nil
			}
		}
	}
	en, err := tab.lookup(e)
	if err != nil {
		return err
	}
	return en.call(self, e)
}
