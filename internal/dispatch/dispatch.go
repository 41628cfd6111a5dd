// Package dispatch calls event handler methods — func(*T, E) or
// func(*T, E) error — without reflect.Value.Call, for the event types E it
// has been told about.
//
// A direct call needs E statically, and the aggregate package, which finds
// handlers by reflection, knows neither E nor T. [Register] is called with E
// static (by event.RegisterVersion, through which every event type a store
// can decode passes) and keeps a binder for E; [Bind] later turns a
// handler's method expression into a [Func] that asserts the event to E and
// makes a plain indirect call, some 40 times cheaper than reflect.Value.Call
// (BenchmarkCall).
//
// The binders live in a package-level cache keyed by type, like encoding/json's
// type cache: each entry is a pure function of its type, registering a type
// twice stores nothing new, and no user-visible behaviour depends on what is
// registered — only speed does. The package imports nothing but the standard
// library, so the event package can depend on it.
//
// # Calling func(*T, E) as func(unsafe.Pointer, E)
//
// Bind needs to call a func(*T, E) for a T it does not know statically. It
// reads the func value as a func(unsafe.Pointer, E) (or the same with an
// error result) and calls that with the receiver as an unsafe.Pointer. This
// is sound because:
//
//   - A Go func value is a single pointer to a closure record whose first
//     word is the code pointer; its static type is used only to choose how
//     arguments and results are passed. Two func types therefore have the
//     same memory layout, and reading a variable of one as the other is a
//     case of rule (1) of [unsafe.Pointer] ("conversion of a *T1 to Pointer to
//     *T2" for equivalent layouts).
//   - *T and unsafe.Pointer are both one pointer word, passed in the same
//     integer register (or stack slot) by the register-based calling
//     convention (ABIInternal), and both are pointers to the garbage
//     collector. The other parameter (E) and the result are the same types
//     in both signatures, so the caller sets up exactly the frame the callee
//     expects. The receiver passed must be a valid *T (or nil); Bind's caller
//     guarantees that.
//   - The func value is a real one. For a method of *T, reflect.Type.Method
//     (reflect/type.go, rtype.Method) builds Func as a Value of kind Func,
//     not indirect, whose pointer is &tfn: a closure record holding the code
//     pointer of the method's ABIInternal entry (for a method promoted from
//     an embedded field, the compiler-generated wrapper that takes *T).
//     reflect.Value.Call itself passes that pointer to runtime.reflectcall,
//     which calls it exactly as compiled code calls a func value (on amd64:
//     closure pointer in DX, CALL through its first word). Bind makes the
//     same call, only with arguments laid out by the compiler.
//
// Bind checks the signature of the func value it is given; the unsafe
// conversion itself is confined to retype.
//
// # Type keys
//
// Finding the handler for an event is a lookup by the event's dynamic type
// on every call, and hashing a reflect.Type (an interface value) costs more
// than the call itself. [TypeKey] reads the dynamic type's identity straight
// from the interface value instead; this is the package's other use of
// unsafe, a read of the first word of a local variable.
package dispatch

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Func calls a bound handler on recv, a pointer of the handler's receiver
// type, with event e. It returns the handler's error, [ErrNilEvent] for a
// nil pointer event, or an error if e is not of the event type bound.
type Func func(recv unsafe.Pointer, e any) error

// ErrNilEvent is returned by a [Func] bound with deref for a nil *E event.
var ErrNilEvent = errors.New("dispatch: nil event")

var (
	binders    sync.Map      // reflect.Type (E) → binder
	generation atomic.Uint64 // number of types in binders
	errorType  = reflect.TypeFor[error]()
)

// binder makes Funcs for handlers of one event type.
type binder interface {
	// bind returns a Func calling fn, whose signature Bind has checked.
	bind(fn reflect.Value, deref bool) Func
}

// Register makes handlers for events of type E callable without reflection.
// It is safe for concurrent use and idempotent.
func Register[E any]() {
	if _, loaded := binders.LoadOrStore(reflect.TypeFor[E](), binderOf[E]{}); !loaded {
		generation.Add(1)
	}
}

// Generation returns a number that changes whenever [Register] is called
// with a new type, so that a caller that bound nothing can tell when to try
// again.
func Generation() uint64 { return generation.Load() }

// Bind returns a Func calling fn, a func value of type func(P, E) or
// func(P, E) error for a pointer type P — typically the Func of a
// reflect.Method of P. With deref, the Func takes events of type *E and
// passes the pointed-to value; otherwise it takes events of type E.
//
// Bind reports false, and the caller should fall back to reflect.Value.Call,
// if E has not been registered or fn has some other signature.
func Bind(fn reflect.Value, deref bool) (Func, bool) {
	if fn.Kind() != reflect.Func || fn.IsNil() || !fn.CanInterface() {
		return nil, false
	}
	ft := fn.Type()
	if ft.NumIn() != 2 || ft.IsVariadic() || ft.In(0).Kind() != reflect.Pointer {
		return nil, false
	}
	if out := ft.NumOut(); out > 1 || out == 1 && ft.Out(0) != errorType {
		return nil, false
	}
	b, ok := binders.Load(ft.In(1))
	if !ok {
		return nil, false
	}
	return b.(binder).bind(fn, deref), true
}

type binderOf[E any] struct{}

func (binderOf[E]) bind(fn reflect.Value, deref bool) Func {
	if fn.Type().NumOut() == 0 {
		call := retype[func(unsafe.Pointer, E), E](fn)
		if deref {
			return func(recv unsafe.Pointer, e any) error {
				p, ok := e.(*E)
				if !ok {
					return typeError[*E](e)
				}
				if p == nil {
					return ErrNilEvent
				}
				call(recv, *p)
				return nil
			}
		}
		return func(recv unsafe.Pointer, e any) error {
			v, ok := e.(E)
			if !ok {
				return typeError[E](e)
			}
			call(recv, v)
			return nil
		}
	}
	call := retype[func(unsafe.Pointer, E) error, E](fn)
	if deref {
		return func(recv unsafe.Pointer, e any) error {
			p, ok := e.(*E)
			if !ok {
				return typeError[*E](e)
			}
			if p == nil {
				return ErrNilEvent
			}
			return call(recv, *p)
		}
	}
	return func(recv unsafe.Pointer, e any) error {
		v, ok := e.(E)
		if !ok {
			return typeError[E](e)
		}
		return call(recv, v)
	}
}

// retype returns fn, a func value of type func(P, E) [error] for a pointer
// type P, as the func type F with P replaced by unsafe.Pointer. See the
// package documentation for why the two types are interchangeable. It is
// the package's only unsafe conversion.
func retype[F func(unsafe.Pointer, E) | func(unsafe.Pointer, E) error, E any](fn reflect.Value) F {
	slot := reflect.New(fn.Type()) // a fresh variable of fn's func type
	slot.Elem().Set(fn)
	return *(*F)(slot.UnsafePointer())
}

// TypeKey returns a non-zero number that identifies the dynamic type of e,
// which must not be nil: the address of the type's descriptor, which is the
// first word of an interface value (see abi.EmptyInterface in the runtime).
// Values of one type have one key, values of different types different
// keys. (In programs built with -linkshared or plugins a type can have two
// descriptors, so two keys; a cache keyed by TypeKey then holds it twice.)
//
// Descriptors never move. One made at run time by package reflect is kept
// for the life of the program, and one compiled in is static, so a key is
// never reused; a caller that keeps a key should keep a value or
// reflect.Type of the type too, which makes that plain.
//
// TypeKey costs a fraction of a nanosecond; reflect.TypeOf followed by
// hashing the reflect.Type costs ten or more.
func TypeKey(e any) uintptr {
	return uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&e))[0])
}

func typeError[E any](e any) error {
	return fmt.Errorf("dispatch: event of type %T, want %v", e, reflect.TypeFor[E]())
}
