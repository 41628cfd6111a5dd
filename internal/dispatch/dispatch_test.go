package dispatch

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// Event types of different shapes, to exercise the calling convention:
// in registers, on the stack, with pointers for the garbage collector, as
// floats, and of size zero.
type (
	small struct{ N int }
	big   struct {
		A, B, C, D, E, F, G, H, I, J, K, L int64
		S                                  string
	}
	withPtrs struct {
		Tags []string
		M    map[string]int
		P    *int
	}
	temp  float64
	empty struct{}
	// never is never registered.
	never struct{ N int }
)

func init() {
	Register[small]()
	Register[big]()
	Register[withPtrs]()
	Register[temp]()
	Register[empty]()
}

var errHandler = errors.New("handler failed")

// base is embedded by value in agg; its handler is promoted.
type base struct{ Promoted int }

func (b *base) OnTemp(t temp) { b.Promoted += int(t) }

// counter is embedded by pointer in agg; its handler is promoted.
type counter struct{ N int }

func (c *counter) OnEmpty(empty) error { c.N++; return nil }

type agg struct {
	base
	*counter
	Sum  int
	Big  big
	Seen []string
}

func (a *agg) OnSmall(e small) { a.Sum += e.N }

func (a *agg) OnSmallErr(e small) error {
	if e.N < 0 {
		return errHandler
	}
	a.Sum += e.N
	return nil
}

func (a *agg) OnBig(e big) { a.Big = e }

func (a *agg) OnWithPtrs(e withPtrs) error {
	runtime.GC() // the event's pointers must stay valid across a collection
	a.Seen = append(a.Seen, e.Tags...)
	a.Sum += e.M["n"] + *e.P
	return nil
}

func (a *agg) OnNever(e never) { a.Sum += e.N }

func (a *agg) Variadic(e ...small)           {}
func (a *agg) TwoResults(small) (int, error) { return 0, nil }
func (a *agg) WrongResult(small) bool        { return false }
func (a agg) ValueRecv(small)                {}

// bindMethod binds the method name of *agg.
func bindMethod(t *testing.T, name string, deref bool) Func {
	t.Helper()
	m, ok := reflect.TypeFor[*agg]().MethodByName(name)
	if !ok {
		t.Fatalf("no method %s", name)
	}
	f, ok := Bind(m.Func, deref)
	if !ok {
		t.Fatalf("Bind(%s) = false, want true", name)
	}
	return f
}

func newAgg() *agg { return &agg{counter: &counter{}} }

func TestBindCallsHandlers(t *testing.T) {
	n := 5
	tests := []struct {
		name   string
		method string
		event  any
		check  func(*agg) bool
	}{
		{"value in registers", "OnSmall", small{3}, func(a *agg) bool { return a.Sum == 3 }},
		{"value with error result", "OnSmallErr", small{4}, func(a *agg) bool { return a.Sum == 4 }},
		{"value on the stack", "OnBig", big{A: 1, L: 12, S: "s"}, func(a *agg) bool { return a.Big == big{A: 1, L: 12, S: "s"} }},
		{"value with pointers", "OnWithPtrs", withPtrs{Tags: []string{"a", "b"}, M: map[string]int{"n": 2}, P: &n},
			func(a *agg) bool { return a.Sum == 7 && strings.Join(a.Seen, ",") == "a,b" }},
		{"float, promoted from a value field", "OnTemp", temp(2), func(a *agg) bool { return a.Promoted == 2 }},
		{"zero-size, promoted from a pointer field", "OnEmpty", empty{}, func(a *agg) bool { return a.counter.N == 1 }},
	}
	for _, tt := range tests {
		for _, deref := range []bool{false, true} {
			name := tt.name
			e := tt.event
			if deref {
				name += ", by pointer"
				p := reflect.New(reflect.TypeOf(e))
				p.Elem().Set(reflect.ValueOf(e))
				e = p.Interface()
			}
			t.Run(name, func(t *testing.T) {
				f := bindMethod(t, tt.method, deref)
				a := newAgg()
				if err := f(unsafe.Pointer(a), e); err != nil {
					t.Fatalf("call = %v, want nil", err)
				}
				if !tt.check(a) {
					t.Errorf("after call: %+v", *a)
				}
			})
		}
	}
}

func TestBindReturnsHandlerError(t *testing.T) {
	for _, deref := range []bool{false, true} {
		f := bindMethod(t, "OnSmallErr", deref)
		var e any = small{-1}
		if deref {
			e = &small{-1}
		}
		a := newAgg()
		if err := f(unsafe.Pointer(a), e); err != errHandler {
			t.Errorf("call(deref %v) = %v, want %v", deref, err, errHandler)
		}
	}
}

func TestBindRejectsBadEvents(t *testing.T) {
	a := newAgg()
	f := bindMethod(t, "OnSmall", false)
	if err := f(unsafe.Pointer(a), &small{1}); err == nil || !strings.Contains(err.Error(), "*dispatch.small") {
		t.Errorf("value handler called with a pointer = %v, want an error naming the type", err)
	}
	if err := f(unsafe.Pointer(a), never{1}); err == nil {
		t.Errorf("handler called with another type = nil, want an error")
	}
	for _, method := range []string{"OnSmall", "OnSmallErr"} {
		f = bindMethod(t, method, true)
		if err := f(unsafe.Pointer(a), (*small)(nil)); err != ErrNilEvent {
			t.Errorf("%s called with a nil pointer = %v, want ErrNilEvent", method, err)
		}
		if err := f(unsafe.Pointer(a), small{1}); err == nil {
			t.Errorf("%s bound with deref called with a value = nil, want an error", method)
		}
	}
	if a.Sum != 0 {
		t.Errorf("handlers ran for bad events: Sum = %d", a.Sum)
	}
}

func TestBindFallsBack(t *testing.T) {
	ptr := reflect.TypeFor[*agg]()
	for _, name := range []string{"OnNever", "Variadic", "TwoResults", "WrongResult"} {
		m, _ := ptr.MethodByName(name)
		if _, ok := Bind(m.Func, false); ok {
			t.Errorf("Bind(%s) = true, want false", name)
		}
	}
	m, _ := reflect.TypeFor[agg]().MethodByName("ValueRecv") // func(agg, small)
	if _, ok := Bind(m.Func, false); ok {
		t.Errorf("Bind(value receiver) = true, want false")
	}
	for _, v := range []reflect.Value{{}, reflect.ValueOf(3), reflect.ValueOf((func(*agg, small))(nil))} {
		if _, ok := Bind(v, false); ok {
			t.Errorf("Bind(%v) = true, want false", v)
		}
	}
	if _, ok := Bind(reflect.ValueOf(func(*agg, small) {}), false); !ok {
		t.Errorf("Bind(func literal) = false, want true")
	}
}

// The func value need not come from reflect.Method: a closure keeps its
// captured variables, as the call passes the closure context.
func TestBindClosure(t *testing.T) {
	var got []int
	offset := 100
	fn := func(a *agg, e small) error {
		got = append(got, e.N+offset)
		a.Sum++
		return nil
	}
	f, ok := Bind(reflect.ValueOf(fn), false)
	if !ok {
		t.Fatal("Bind(closure) = false")
	}
	a := newAgg()
	if err := f(unsafe.Pointer(a), small{1}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != 101 || a.Sum != 1 {
		t.Errorf("closure saw %v, Sum %d; want [101], 1", got, a.Sum)
	}
}

type generic[T any] struct{ last T }

func (g *generic[T]) OnSmall(e small) { g.last = any(e.N).(T) }

func TestBindGenericReceiver(t *testing.T) {
	m, _ := reflect.TypeFor[*generic[int]]().MethodByName("OnSmall")
	f, ok := Bind(m.Func, false)
	if !ok {
		t.Fatal("Bind = false")
	}
	g := &generic[int]{}
	if err := f(unsafe.Pointer(g), small{9}); err != nil || g.last != 9 {
		t.Errorf("call = %v, last %d; want nil, 9", err, g.last)
	}
}

func TestRegisterConcurrently(t *testing.T) {
	type late struct{ N int }
	type lateAgg struct{ N int }
	fn := reflect.ValueOf(func(a *lateAgg, e late) { a.N += e.N })
	before := Generation()
	if _, ok := binders.Load(reflect.TypeFor[late]()); ok {
		before-- // registered by an earlier run (-count)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			Register[late]()
			f, ok := Bind(fn, false)
			if !ok {
				t.Error("Bind after Register = false")
				return
			}
			a := &lateAgg{}
			if err := f(unsafe.Pointer(a), late{2}); err != nil || a.N != 2 {
				t.Errorf("call = %v, N %d", err, a.N)
			}
		})
	}
	wg.Wait()
	if g := Generation(); g != before+1 {
		t.Errorf("Generation() = %d after registering one new type 8 times, want %d", g, before+1)
	}
}

func TestTypeKey(t *testing.T) {
	n := 1
	type named int
	values := [][]any{ // each row: values of one type
		{small{1}, small{2}},
		{&small{1}, &small{2}, (*small)(nil)},
		{1, 2},
		{named(1), named(2)},
		{"a", "b"},
		{empty{}},
		{[]int{1}, []int(nil)},
		{&n},
		{reflect.New(reflect.StructOf([]reflect.StructField{{Name: "X", Type: reflect.TypeFor[int]()}})).Interface()},
	}
	seen := map[uintptr]reflect.Type{}
	for _, row := range values {
		k := TypeKey(row[0])
		if k == 0 {
			t.Errorf("TypeKey(%#v) = 0", row[0])
		}
		for _, v := range row[1:] {
			if got := TypeKey(v); got != k {
				t.Errorf("TypeKey(%#v) = %#x, TypeKey(%#v) = %#x; want equal keys for one type", row[0], k, v, got)
			}
		}
		if other, dup := seen[k]; dup {
			t.Errorf("TypeKey: %v and %T have the same key", other, row[0])
		}
		seen[k] = reflect.TypeOf(row[0])
	}
}

func BenchmarkCall(b *testing.B) {
	a := newAgg()
	e := any(small{1})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			a.OnSmall(e.(small))
		}
	})
	b.Run("bound", func(b *testing.B) {
		m, _ := reflect.TypeFor[*agg]().MethodByName("OnSmall")
		f, _ := Bind(m.Func, false)
		for b.Loop() {
			if err := f(unsafe.Pointer(a), e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		m, _ := reflect.TypeFor[*agg]().MethodByName("OnSmall")
		args := []reflect.Value{reflect.ValueOf(a), reflect.ValueOf(e)}
		for b.Loop() {
			m.Func.Call(args)
		}
	})
}
