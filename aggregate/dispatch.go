package aggregate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairnhq/cairn/event"
)

// Dispatch.
//
// The handlers of an aggregate type are found by reflection once, when a
// Repository is built (or, for an aggregate not loaded by one, on its first
// Apply), and kept in a table held by the Repository and by each aggregate's
// Root: nothing is cached at package level. Each event is then a map lookup
// by its dynamic type and a reflect.Value.Call of the method, unless the
// aggregate type lists its handlers (Handlers, direct.go): then it is a
// direct call.
//
// A direct call needs the aggregate type and the event type together in one
// piece of statically typed code, which only the user's code has. Safe Go
// offers two ways from reflection to a call: reflect.Value.Call on the
// method, and a method value from reflect.Value.Method(i).Interface()
// asserted to func(E); the second goes through the same machinery plus a
// trampoline, and measured slower (BenchmarkDispatch, method_value_adapter).

// table is the dispatch table of one aggregate type.
type table struct {
	ptr      reflect.Type           // *T
	byType   map[reflect.Type]entry // event types E and *E
	handlers []*handler             // in method order
	direct   any                    // direct[T] when *T implements Handlers[T]
}

// entry is the handler for one dynamic event type.
type entry struct {
	h     *handler
	deref bool // the event is a *E: pass *e
}

// handler is an On… method of the aggregate type.
type handler struct {
	ptr        reflect.Type  // *T
	method     string        // its name
	event      reflect.Type  // E, its parameter
	fn         reflect.Value // the method expression: func(*T, E) [error]
	returnsErr bool
}

var (
	errorType = reflect.TypeFor[error]()
	rootType  = reflect.TypeFor[Root]()
)

// newTable finds and checks the handlers of the aggregate type ptr (a
// pointer type *T): every method of *T named On followed by an upper-case
// letter must take one event parameter of a named, non-pointer,
// non-interface type, on a pointer receiver, and return nothing or an
// error; no two may take the same type; and when reg is not nil, the type
// each takes must be registered with it (as itself or as a pointer). All
// problems are reported at once, joined.
func newTable(ptr reflect.Type, reg *event.Registry) (*table, error) {
	if err := checkType(ptr); err != nil {
		return nil, err
	}
	t := &table{ptr: ptr, byType: make(map[reflect.Type]entry)}
	var errs []error
	for m := range ptr.Methods() {
		if !isHandlerName(m.Name) {
			continue
		}
		h, err := newHandler(ptr, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if old, dup := t.byType[h.event]; dup {
			errs = append(errs, fmt.Errorf("%w: (%v).%s and (%v).%s both take %v: keep one handler per event type",
				ErrInvalidHandler, ptr, old.h.method, ptr, h.method, h.event))
			continue
		}
		if reg != nil {
			if _, err := reg.TypeName(reflect.New(h.event).Interface()); err != nil {
				errs = append(errs, fmt.Errorf("%w: (%v).%s takes %v, which the store's registry does not know: register it or remove the handler",
					ErrInvalidHandler, ptr, h.method, h.event))
				continue
			}
		}
		t.byType[h.event] = entry{h: h}
		t.byType[reflect.PointerTo(h.event)] = entry{h: h, deref: true}
		t.handlers = append(t.handlers, h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// newHandler checks the shape of the On… method m of the pointer type ptr:
// a pointer receiver, one parameter of a named concrete non-pointer type,
// no result or one error result.
func newHandler(ptr reflect.Type, m reflect.Method) (*handler, error) {
	ft := m.Type // includes the receiver
	shape := func() string {
		return strings.Replace(ft.String(), "func("+ptr.String()+", ", "func(", 1)
	}
	if vm, ok := ptr.Elem().MethodByName(m.Name); ok && vm.Type.In(0).Kind() != reflect.Pointer {
		return nil, fmt.Errorf("%w: (%v).%s has a value receiver, so the state it sets is lost: declare it on %v",
			ErrInvalidHandler, ptr.Elem(), m.Name, ptr)
	}
	if ft.NumIn() != 2 || ft.IsVariadic() {
		return nil, fmt.Errorf("%w: (%v).%s has signature %s: want one event parameter, as in func(EventType) or func(EventType) error",
			ErrInvalidHandler, ptr, m.Name, shape())
	}
	if out := ft.NumOut(); out > 1 || out == 1 && ft.Out(0) != errorType {
		return nil, fmt.Errorf("%w: (%v).%s has signature %s: want no result or a single error result",
			ErrInvalidHandler, ptr, m.Name, shape())
	}
	e := ft.In(1)
	switch {
	case e.Kind() == reflect.Pointer:
		return nil, fmt.Errorf("%w: (%v).%s takes %v: take the event by value, %v (events of type %v are passed to it too)",
			ErrInvalidHandler, ptr, m.Name, e, e.Elem(), e)
	case e.Kind() == reflect.Interface:
		return nil, fmt.Errorf("%w: (%v).%s takes the interface type %v: want a concrete event type",
			ErrInvalidHandler, ptr, m.Name, e)
	case e.Name() == "":
		return nil, fmt.Errorf("%w: (%v).%s takes the unnamed type %v: want a named event type",
			ErrInvalidHandler, ptr, m.Name, e)
	}
	return &handler{ptr: ptr, method: m.Name, event: e, fn: m.Func, returnsErr: ft.NumOut() == 1}, nil
}

// lookup returns the handler for events of e's dynamic type.
func (t *table) lookup(e any) (entry, error) {
	if e == nil {
		return entry{}, fmt.Errorf("aggregate: apply a nil event to %v", t.ptr)
	}
	et := reflect.TypeOf(e)
	if h, ok := t.byType[et]; ok {
		return h, nil
	}
	name := et
	if et.Kind() == reflect.Pointer {
		name = et.Elem()
	}
	return entry{}, fmt.Errorf("%w: %v has no handler for events of type %v: want a method like func (%v) On%s(%v) [error]",
		ErrMissingHandler, t.ptr, et, t.ptr, name.Name(), name)
}

// call runs the handler on the aggregate self (a *T) for event e.
func (en entry) call(self reflect.Value, e any) error {
	h := en.h
	ev := reflect.ValueOf(e)
	if en.deref {
		if ev.IsNil() {
			return fmt.Errorf("(%v).%s: nil %v event", h.ptr, h.method, ev.Type())
		}
		ev = ev.Elem()
	}
	args := [2]reflect.Value{self, ev}
	out := h.fn.Call(args[:])
	if h.returnsErr && !out[0].IsNil() {
		return fmt.Errorf("(%v).%s: %w", h.ptr, h.method, out[0].Interface().(error))
	}
	return nil
}

// isHandlerName reports whether a method name is reserved for an event
// handler: "On" followed by an upper-case letter.
func isHandlerName(name string) bool {
	rest, ok := strings.CutPrefix(name, "On")
	if !ok || rest == "" {
		return false
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return unicode.IsUpper(r)
}

// Check validates the aggregate type T up front, for a test or at start-up,
// as [NewRepository] does: T must be a struct type that embeds [Root] by
// value, and every method of *T named On followed by an upper-case letter
// must be a valid handler (pointer receiver, one parameter of a named
// event type, no result or an error result, no two for one event type).
// Each of the example events must have a handler:
//
//	err := aggregate.Check[Todo](TodoAdded{}, TodoRenamed{}, TodoDone{})
//
// All problems are reported at once, joined with [errors.Join].
func Check[T any](events ...any) error {
	tab, err := tableFor[T](nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range events {
		if _, err := tab.lookup(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkType reports whether ptr (a pointer type *T) is a usable aggregate
// type: T is a struct that embeds Root by value.
func checkType(ptr reflect.Type) error {
	t := ptr.Elem()
	if t.Kind() == reflect.Pointer {
		return fmt.Errorf("%w: aggregate type %v is a pointer type: use %v as the type argument", ErrNoRoot, t, t.Elem())
	}
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("%w: aggregate type %v is not a struct", ErrNoRoot, t)
	}
	if !ptr.Implements(rooterType) {
		return fmt.Errorf("%w: %v does not embed aggregate.Root", ErrNoRoot, t)
	}
	if !embedsRootByValue(t, 0) {
		return fmt.Errorf("%w: %v embeds *aggregate.Root: embed aggregate.Root by value", ErrNoRoot, t)
	}
	return nil
}

// embedsRootByValue reports whether struct type t reaches Root through
// embedded fields that are all values.
func embedsRootByValue(t reflect.Type, depth int) bool {
	if depth > 8 || t.Kind() != reflect.Struct {
		return false
	}
	for f := range t.Fields() {
		if !f.Anonymous {
			continue
		}
		if f.Type == rootType || embedsRootByValue(f.Type, depth+1) {
			return true
		}
	}
	return false
}
