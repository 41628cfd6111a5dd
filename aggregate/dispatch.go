package aggregate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/cairnhq/cairn/internal/dispatch"
)

// The dispatch cache.
//
// Resolving an event type to an aggregate's On<EventType> method uses
// reflection once per (aggregate type, event type); the result is kept in
// package-level tables (aggTypes and each aggType's handlers). Like
// encoding/json's field cache, they hold only data derived from Go types —
// never anything a user sets — so they are not configuration and need no
// reset.
//
// A handler for an event type registered with event.RegisterVersion is
// called directly, through a dispatch.Func (see internal/dispatch); for other
// event types it goes through reflect.Value.Call. A handler resolved before
// its event type was registered is resolved again on its next use.
var aggTypes sync.Map // reflect.Type (*T) → *aggType

// aggType is the dispatch table of one aggregate type.
type aggType struct {
	ptr      reflect.Type                 // *T
	mu       sync.Mutex                   // serializes writers of handlers
	handlers atomic.Pointer[handlerTable] // read without locking; nil when empty
}

// handlerTable maps dynamic event types (E or *E) to their handlers: an
// open-addressing hash table keyed by dispatch.TypeKey, at most half full. A
// published table is never modified; adding a handler builds a new one.
//
// The lookup is on the path of every event applied or replayed, and is most
// of what dispatch adds to a type switch. In BenchmarkDispatch a sync.Map
// keyed by reflect.Type (which hashes an interface value) cost some 15 ns
// more per event, keying by the descriptor address obtained through
// reflect (reflect.ValueOf(reflect.TypeOf(e)).Pointer()) about 4 ns more,
// and a map[uintptr]*handler about 1 ns more.
type handlerTable struct {
	shift uint          // 64 - log2(len(slots))
	slots []handlerSlot // a power of two of them
	all   []*handler
}

type handlerSlot struct {
	key uintptr // h.key, or 0 for a free slot
	h   *handler
}

// lookup returns the handler for the type with the given key, or nil.
func (t *handlerTable) lookup(key uintptr) *handler {
	mask := uint64(len(t.slots) - 1)
	for i := slotHash(key, t.shift); ; i++ {
		if s := &t.slots[i&mask]; s.key == key || s.key == 0 {
			return s.h
		}
	}
}

// with returns a table holding the handlers of t (which may be nil) and h,
// which replaces any of t's for the same type.
func (t *handlerTable) with(h *handler) *handlerTable {
	var all []*handler
	if t != nil {
		for _, old := range t.all {
			if old.key != h.key {
				all = append(all, old)
			}
		}
	}
	all = append(all, h)
	bits := 3
	for 1<<bits < 2*len(all) {
		bits++
	}
	next := &handlerTable{shift: uint(64 - bits), slots: make([]handlerSlot, 1<<bits), all: all}
	mask := uint64(len(next.slots) - 1)
	for _, h := range all {
		i := slotHash(h.key, next.shift)
		for next.slots[i&mask].key != 0 {
			i++
		}
		next.slots[i&mask] = handlerSlot{h.key, h}
	}
	return next
}

// slotHash is a Fibonacci hash of key: its top 64-shift bits.
func slotHash(key uintptr, shift uint) uint64 {
	return uint64(key) * 0x9e3779b97f4a7c15 >> shift
}

// handler is a resolved On<EventType> method, or the error found resolving it.
type handler struct {
	typ        reflect.Type  // the dynamic event type, E or *E; keeps key's descriptor reachable
	key        uintptr       // dispatch.TypeKey of events of type typ
	fn         reflect.Value // method expression: func(*T, E) [error]
	fast       dispatch.Func // fn without reflection, or nil if E is not registered
	gen        uint64        // dispatch.Generation() before fast was looked up
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

// handlerFor returns the handler of the aggregate for events of e's
// dynamic type; e must not be nil.
func (a *aggType) handlerFor(e any) *handler {
	if t := a.handlers.Load(); t != nil {
		if h := t.lookup(dispatch.TypeKey(e)); h != nil && !h.stale() {
			return h
		}
	}
	return a.add(e)
}

// add resolves the handler for events of e's type and publishes it. A handler
// already there is replaced if it is stale: an event type was registered
// since it was resolved, perhaps E, which makes the fast path available.
func (a *aggType) add(e any) *handler {
	key := dispatch.TypeKey(e)
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.handlers.Load()
	if cur != nil {
		if h := cur.lookup(key); h != nil && !h.stale() {
			return h // added meanwhile
		}
	}
	h := a.resolve(reflect.TypeOf(e))
	h.key = key
	a.handlers.Store(cur.with(h))
	return h
}

// stale reports whether h uses reflection although its event type may have
// been registered since it was resolved.
func (h *handler) stale() bool {
	return h.fast == nil && h.err == nil && h.gen != dispatch.Generation()
}

// resolve finds and checks the On<EventType> method for events of dynamic
// type et.
func (a *aggType) resolve(et reflect.Type) *handler {
	h := &handler{typ: et}
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
	h.gen = dispatch.Generation() // before Bind: a registration in between is caught by stale
	h.fast, _ = dispatch.Bind(m.Func, h.deref)
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

// call runs the handler on the aggregate of r for event e.
func (h *handler) call(r *Root, e any) error {
	if h.fast != nil {
		if err := h.fast(r.ptr, e); err != nil {
			if err == dispatch.ErrNilEvent {
				return fmt.Errorf("(%v).%s: nil %T event", r.typ.ptr, h.method, e)
			}
			return fmt.Errorf("(%v).%s: %w", r.typ.ptr, h.method, err)
		}
		return nil
	}
	self := r.self
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
		if h := at.handlerFor(e); h.err != nil && !containsErr(errs, h.err) {
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
