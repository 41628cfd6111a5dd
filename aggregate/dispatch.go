package aggregate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The dispatch cache.
//
// Resolving an event type to an aggregate's On<EventType> method uses
// reflection once per (aggregate type, event type); the result is kept in
// package-level sync.Maps. Like encoding/json's field cache, they hold only
// data derived from Go types — never anything a user sets — so they are
// not configuration and need no reset.
var aggTypes sync.Map // reflect.Type (*T) → *aggType

// aggType is the dispatch table of one aggregate type.
type aggType struct {
	ptr      reflect.Type // *T
	handlers sync.Map     // reflect.Type (dynamic event type, E or *E) → *handler
}

// handler is a resolved On<EventType> method, or the error found resolving it.
type handler struct {
	fn         reflect.Value // method expression: func(*T, E) [error]
	method     string
	deref      bool // the event arrives as *E; pass *e
	returnsErr bool
	err        error
}

var (
	errorType = reflect.TypeFor[error]()
	rootType  = reflect.TypeFor[Root]()
)

// typeFor returns the dispatch table of the aggregate type ptr (a pointer
// type), creating it on first use.
func typeFor(ptr reflect.Type) *aggType {
	if t, ok := aggTypes.Load(ptr); ok {
		return t.(*aggType)
	}
	t, _ := aggTypes.LoadOrStore(ptr, &aggType{ptr: ptr})
	return t.(*aggType)
}

// handlerFor returns the handler of the aggregate for events of dynamic
// type et.
func (a *aggType) handlerFor(et reflect.Type) *handler {
	if h, ok := a.handlers.Load(et); ok {
		return h.(*handler)
	}
	h, _ := a.handlers.LoadOrStore(et, a.resolve(et))
	return h.(*handler)
}

// resolve finds and checks the On<EventType> method for events of dynamic
// type et.
func (a *aggType) resolve(et reflect.Type) *handler {
	h := &handler{}
	elem := et
	if et.Kind() == reflect.Pointer {
		elem = et.Elem()
		h.deref = true
	}
	name := elem.Name()
	h.method = "On" + name
	want := fmt.Sprintf("func (%v) %s(%v) [error]", a.ptr, h.method, elem)
	if name == "" || !isIdent(name) {
		h.err = fmt.Errorf("%w: %v has no handler for event type %v: only named, non-generic event types can be dispatched to On<EventType> methods",
			ErrMissingHandler, a.ptr, et)
		return h
	}
	m, ok := a.ptr.MethodByName(h.method)
	if !ok {
		h.err = fmt.Errorf("%w: %v has no method %s for event %v: want %s (exported, pointer receiver)",
			ErrMissingHandler, a.ptr, h.method, et, want)
		return h
	}
	if err := checkMethod(a.ptr, m); err != nil {
		h.err = err
		return h
	}
	if p := m.Type.In(1); p != elem {
		h.err = fmt.Errorf("%w: (%v).%s takes %v, but the event is %v: want %s",
			ErrInvalidHandler, a.ptr, h.method, p, et, want)
		return h
	}
	h.fn = m.Func
	h.returnsErr = m.Type.NumOut() == 1
	return h
}

// checkMethod checks the shape of an On… method of the pointer type ptr:
// a pointer receiver, one parameter, no result or one error result.
func checkMethod(ptr reflect.Type, m reflect.Method) error {
	ft := m.Type // includes the receiver
	shape := func() string {
		s := ft.String()
		return strings.Replace(s, "func("+ptr.String()+", ", "func(", 1)
	}
	if ft.NumIn() != 2 || ft.IsVariadic() {
		return fmt.Errorf("%w: (%v).%s has signature %s: want one event parameter, as in func(EventType) or func(EventType) error",
			ErrInvalidHandler, ptr, m.Name, shape())
	}
	if out := ft.NumOut(); out > 1 || out == 1 && ft.Out(0) != errorType {
		return fmt.Errorf("%w: (%v).%s has signature %s: want no result or a single error result",
			ErrInvalidHandler, ptr, m.Name, shape())
	}
	if vm, ok := ptr.Elem().MethodByName(m.Name); ok && vm.Type.In(0).Kind() != reflect.Pointer {
		return fmt.Errorf("%w: (%v).%s has a value receiver, so the state it sets is lost: declare it on %v",
			ErrInvalidHandler, ptr.Elem(), m.Name, ptr)
	}
	return nil
}

// call runs the handler on the aggregate self (a pointer value) for event e.
func (h *handler) call(self reflect.Value, e any) error {
	ev := reflect.ValueOf(e)
	if h.deref {
		if ev.IsNil() {
			return fmt.Errorf("(%v).%s: nil %v event", self.Type(), h.method, ev.Type())
		}
		ev = ev.Elem()
	}
	args := [2]reflect.Value{self, ev}
	out := h.fn.Call(args[:])
	if h.returnsErr && !out[0].IsNil() {
		return fmt.Errorf("(%v).%s: %w", self.Type(), h.method, out[0].Interface().(error))
	}
	return nil
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(unicode.IsLetter(r) || r == '_' || i > 0 && unicode.IsDigit(r)) {
			return false
		}
	}
	return s != ""
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

// Check validates the aggregate type T up front, for a test or at start-up:
// T must be a struct type that embeds [Root] by value; every method of *T
// named On followed by an upper-case letter must be a valid handler
// (pointer receiver, one parameter, no result or an error result); and for
// each of the example events there must be a matching handler.
//
//	err := aggregate.Check[Todo](TodoAdded{}, TodoRenamed{}, TodoDone{})
//
// All problems are reported at once, joined with [errors.Join].
func Check[T any](events ...any) error {
	ptr := reflect.TypeFor[*T]()
	if err := checkType(ptr); err != nil {
		return err
	}
	var errs []error
	for m := range ptr.Methods() {
		if isHandlerName(m.Name) {
			if err := checkMethod(ptr, m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	at := typeFor(ptr)
	for _, e := range events {
		if e == nil {
			errs = append(errs, fmt.Errorf("aggregate: check %v: nil example event", ptr))
			continue
		}
		if h := at.handlerFor(reflect.TypeOf(e)); h.err != nil && !containsErr(errs, h.err) {
			errs = append(errs, h.err)
		}
	}
	return errors.Join(errs...)
}

func containsErr(errs []error, err error) bool {
	for _, e := range errs {
		if e.Error() == err.Error() {
			return true
		}
	}
	return false
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
