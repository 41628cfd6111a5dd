package aggregate_test

import (
	"errors"
	"image"
	"image/color"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
)

func newTodo(t testing.TB, id string) *Todo {
	t.Helper()
	todo, err := aggregate.New[Todo](id)
	if err != nil {
		t.Fatalf("New[Todo](%q): %v", id, err)
	}
	return todo
}

func TestApplyValueEvents(t *testing.T) {
	todo := newTodo(t, "1")
	if err := aggregate.Apply(todo, TodoAdded{Title: "milk", Tags: []string{"shop"}}, TodoRenamed{Title: "oat milk"}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := aggregate.Apply(todo, TodoCompleted{}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if todo.ID() != "1" || todo.Title != "oat milk" || !todo.Done || todo.Renames != 1 {
		t.Errorf("after Apply: id %q, %+v", todo.ID(), *todo)
	}
	if v := todo.Version(); v != 3 {
		t.Errorf("Version() = %d, want 3", v)
	}
	if v := todo.CommittedVersion(); v != 0 {
		t.Errorf("CommittedVersion() = %d, want 0", v)
	}
	want := []any{TodoAdded{Title: "milk", Tags: []string{"shop"}}, TodoRenamed{Title: "oat milk"}, TodoCompleted{}}
	if got := todo.Changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Changes() = %v, want %v", got, want)
	}
}

func TestApplyPointerEvents(t *testing.T) {
	todo := newTodo(t, "1")
	added := &TodoAdded{Title: "bread"}
	if err := aggregate.Apply(todo, added, &TodoCompleted{}); err != nil {
		t.Fatalf("Apply(pointers): %v", err)
	}
	if todo.Title != "bread" || !todo.Done || todo.Version() != 2 {
		t.Errorf("after Apply(pointers): %+v, version %d", *todo, todo.Version())
	}
	// The change is recorded as applied: the pointer itself.
	if got := todo.Changes(); got[0] != any(added) {
		t.Errorf("Changes()[0] = %#v, want the applied pointer", got[0])
	}
	var nilEvent *TodoRenamed
	want := "(*aggregate_test.Todo).OnTodoRenamed: nil *aggregate_test.TodoRenamed event"
	if err := aggregate.Apply(todo, nilEvent); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Apply(nil *TodoRenamed) = %v, want an error containing %q", err, want)
	}
	if err := aggregate.Apply(todo, nil); err == nil {
		t.Errorf("Apply(nil) = nil, want an error")
	}
	if v := todo.Version(); v != 2 {
		t.Errorf("Version() after failed applies = %d, want 2", v)
	}
}

// Handlers promoted from embedded fields: the Root and some handlers come
// through an embedded base, others from a field embedded two levels down.

type base struct {
	aggregate.Root
	Count int
}

func (b *base) OnTodoCompleted(TodoCompleted) error { b.Count++; return nil }

type tally struct{ Renames int }

func (t *tally) OnTodoRenamed(TodoRenamed) { t.Renames++ }

type inner struct{ tally }

type Project struct {
	base
	inner
	Name string
}

func (p *Project) OnTodoAdded(e TodoAdded) { p.Name = e.Title }

func TestApplyPromotedHandlers(t *testing.T) {
	if err := aggregate.Check[Project](TodoAdded{}, TodoCompleted{}, TodoRenamed{}); err != nil {
		t.Fatalf("Check[Project]: %v", err)
	}
	p, err := aggregate.New[Project]("p")
	if err != nil {
		t.Fatalf("New[Project]: %v", err)
	}
	if err := aggregate.Apply(p, TodoAdded{Title: "x"}, TodoCompleted{}, &TodoCompleted{}, TodoRenamed{}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if p.Name != "x" || p.Count != 2 || p.Renames != 1 || p.Version() != 4 {
		t.Errorf("after Apply: %+v version %d", *p, p.Version())
	}
	for i, e := range []any{TodoRenamed{}, &TodoCompleted{}} {
		if err := aggregate.Replay(p, &event.Event{Version: int64(5 + i), Data: e}); err != nil {
			t.Fatalf("Replay(%T): %v", e, err)
		}
	}
	if p.Count != 3 || p.Renames != 2 || p.CommittedVersion() != 6 || len(p.Changes()) != 4 {
		t.Errorf("after Replay: %+v committed %d changes %d", *p, p.CommittedVersion(), len(p.Changes()))
	}
}

func TestApplyMissingHandler(t *testing.T) {
	type Unknown struct{}
	todo := newTodo(t, "1")
	err := aggregate.Apply(todo, TodoAdded{Title: "a"}, Unknown{})
	if !errors.Is(err, aggregate.ErrMissingHandler) {
		t.Fatalf("Apply(Unknown) = %v, want ErrMissingHandler", err)
	}
	for _, s := range []string{"*aggregate_test.Todo", "aggregate_test.Unknown", "OnUnknown"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	// Handlers are resolved before any is called: nothing was applied.
	if todo.Version() != 0 || todo.Title != "" || len(todo.Changes()) != 0 {
		t.Errorf("after failed Apply: %+v version %d changes %v", *todo, todo.Version(), todo.Changes())
	}
}

// Dispatch is by the handler's parameter type, not by its name: two event
// types of one Go name from two packages (here color.Gray and image.Gray)
// each have their handler, whatever the handlers are called.

type Canvas struct {
	aggregate.Root
	Shade  uint8
	Pixels int
}

func (c *Canvas) OnColorGray(e color.Gray) { c.Shade = e.Y }
func (c *Canvas) OnImageGray(e image.Gray) { c.Pixels = len(e.Pix) }

func TestDispatchByParameterType(t *testing.T) {
	c, err := aggregate.New[Canvas]("c")
	if err != nil {
		t.Fatal(err)
	}
	if err := aggregate.Apply(c, color.Gray{Y: 7}, image.Gray{Pix: make([]uint8, 4)}, &color.Gray{Y: 9}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if c.Shade != 9 || c.Pixels != 4 {
		t.Errorf("after Apply: %+v, want shade 9, 4 pixels", *c)
	}
}

// Aggregates with broken handlers.

type Secret struct{}

type Unexported struct{ aggregate.Root }

//lint:ignore U1000 an unexported handler name is the mistake under test
func (u *Unexported) onSecret(Secret) {}

type WrongResult struct{ aggregate.Root }

func (w *WrongResult) OnTodoAdded(TodoAdded) bool { return true }

type WrongParams struct{ aggregate.Root }

func (w *WrongParams) OnTodoAdded(TodoAdded, int) {}

type PointerParam struct{ aggregate.Root }

func (w *PointerParam) OnTodoAdded(*TodoAdded) {}

type InterfaceParam struct{ aggregate.Root }

func (w *InterfaceParam) OnAnything(any) {}

type UnnamedParam struct{ aggregate.Root }

func (w *UnnamedParam) OnPair(struct{ A, B int }) {}

type TwoForOne struct{ aggregate.Root }

func (w *TwoForOne) OnAdded(TodoAdded)     {}
func (w *TwoForOne) OnTodoAdded(TodoAdded) {}

type ValueReceiver struct {
	aggregate.Root
	Title string
}

//lint:ignore SA4005 a value receiver that loses the state it sets is the mistake under test
func (v ValueReceiver) OnTodoAdded(e TodoAdded) { v.Title = e.Title }

// TestBadHandlers checks that each broken aggregate type is refused with
// the same error by Check, New, NewRepository and the first Apply to an
// aggregate made with new(T).
func TestBadHandlers(t *testing.T) {
	tests := []struct {
		name  string
		check func() error
		names []string
	}{
		{"wrong result", errorsOf[WrongResult],
			[]string{"*aggregate_test.WrongResult", "OnTodoAdded", "func(aggregate_test.TodoAdded) bool"}},
		{"two parameters", errorsOf[WrongParams],
			[]string{"*aggregate_test.WrongParams", "OnTodoAdded", "func(aggregate_test.TodoAdded, int)"}},
		{"pointer parameter", errorsOf[PointerParam],
			[]string{"*aggregate_test.PointerParam", "OnTodoAdded", "takes *aggregate_test.TodoAdded"}},
		{"interface parameter", errorsOf[InterfaceParam],
			[]string{"*aggregate_test.InterfaceParam", "OnAnything", "interface"}},
		{"unnamed parameter", errorsOf[UnnamedParam],
			[]string{"*aggregate_test.UnnamedParam", "OnPair", "unnamed type struct"}},
		{"two handlers for one type", errorsOf[TwoForOne],
			[]string{"(*aggregate_test.TwoForOne).OnAdded and (*aggregate_test.TwoForOne).OnTodoAdded both take aggregate_test.TodoAdded"}},
		{"value receiver", errorsOf[ValueReceiver],
			[]string{"aggregate_test.ValueReceiver", "OnTodoAdded", "value receiver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check()
			if !errors.Is(err, aggregate.ErrInvalidHandler) {
				t.Fatalf("got %v, want ErrInvalidHandler", err)
			}
			for _, s := range tt.names {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}

	// A method that is not exported is no handler: the event is missing one.
	if err := errorsOf[Unexported](); err != nil {
		t.Errorf("Unexported: %v", err)
	}
	err := aggregate.Apply(new(Unexported), Secret{})
	if !errors.Is(err, aggregate.ErrMissingHandler) || !strings.Contains(err.Error(), "OnSecret") {
		t.Errorf("Apply(Secret) = %v, want ErrMissingHandler naming OnSecret", err)
	}
}

// errorsOf returns the error of Check[T], after checking that New[T],
// NewRepository[T] and Apply on a new(T) give the same one.
func errorsOf[T any, P aggregate.Pointer[T]]() error {
	err := aggregate.Check[T]()
	_, errNew := aggregate.New[T, P]("x")
	_, errRepo := aggregate.NewRepository[T](newMemStore(), "x", aggregate.Options{})
	errApply := aggregate.Apply(P(new(T)))
	for _, other := range []error{errNew, errRepo, errApply} {
		if msg(other) != msg(err) {
			return errors.Join(err, other)
		}
	}
	return err
}

func msg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestApplyHandlerError(t *testing.T) {
	todo := newTodo(t, "1")
	err := aggregate.Apply(todo, TodoAdded{Title: "a"}, TodoReopened{}, TodoRenamed{Title: "b"})
	if !errors.Is(err, errAlreadyOpen) {
		t.Fatalf("Apply = %v, want errAlreadyOpen", err)
	}
	if want := "aggregate: apply: (*aggregate_test.Todo).OnTodoReopened: todo is open already"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The event before the failing one stays applied; the failing one and
	// those after it are not.
	if todo.Version() != 1 || todo.Title != "a" || len(todo.Changes()) != 1 {
		t.Errorf("after failing Apply: %+v version %d changes %v", *todo, todo.Version(), todo.Changes())
	}
	err = aggregate.Replay(todo, &event.Event{Version: 2, Type: "todo.reopened", Data: TodoReopened{}})
	if want := "version 2 (todo.reopened): (*aggregate_test.Todo).OnTodoReopened: todo is open already"; !errors.Is(err, errAlreadyOpen) || err.Error() != want {
		t.Errorf("Replay = %v, want %q", err, want)
	}
}

// TestAggregatesHoweverMade applies events to aggregates made without New
// or a Repository, and to copies.
func TestAggregatesHoweverMade(t *testing.T) {
	for name, todo := range map[string]*Todo{"new": new(Todo), "literal": {Title: "preset"}} {
		t.Run(name, func(t *testing.T) {
			if err := aggregate.Apply(todo, TodoAdded{Title: "a"}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if err := todo.Rename("b"); err != nil {
				t.Fatalf("Rename: %v", err)
			}
			if todo.Title != "b" || todo.Version() != 2 || len(todo.Changes()) != 2 || todo.ID() != "" {
				t.Errorf("after Apply: %+v version %d changes %d id %q", *todo, todo.Version(), len(todo.Changes()), todo.ID())
			}
		})
	}
	t.Run("copy", func(t *testing.T) {
		orig := newTodo(t, "1")
		if err := aggregate.Apply(orig, TodoAdded{Title: "a"}); err != nil {
			t.Fatal(err)
		}
		cp := *orig
		if err := aggregate.Apply(&cp, TodoRenamed{Title: "copy"}); err != nil {
			t.Fatalf("Apply to the copy: %v", err)
		}
		if err := aggregate.Apply(orig, TodoRenamed{Title: "orig"}); err != nil {
			t.Fatalf("Apply to the original: %v", err)
		}
		if err := aggregate.Apply(&cp, TodoCompleted{}); err != nil {
			t.Fatalf("Apply to the copy again: %v", err)
		}
		want := []any{TodoAdded{Title: "a"}, TodoRenamed{Title: "orig"}}
		if got := orig.Changes(); orig.Title != "orig" || orig.Done || orig.Version() != 2 || !reflect.DeepEqual(got, want) {
			t.Errorf("original: %+v version %d changes %v, want title orig, version 2, changes %v", *orig, orig.Version(), got, want)
		}
		want = []any{TodoAdded{Title: "a"}, TodoRenamed{Title: "copy"}, TodoCompleted{}}
		if got := cp.Changes(); cp.Title != "copy" || !cp.Done || cp.Version() != 3 || cp.ID() != "1" || !reflect.DeepEqual(got, want) {
			t.Errorf("copy: %+v version %d changes %v, want title copy, done, version 3, changes %v", cp, cp.Version(), got, want)
		}
	})
}

type NoRoot struct{ Title string }

type PtrRoot struct{ *aggregate.Root }

func TestNoRoot(t *testing.T) {
	store := newMemStore()
	for name, f := range map[string]func() error{
		"no root":               func() error { _, err := aggregate.NewRepository[NoRoot](store, "n", aggregate.Options{}); return err },
		"pointer type":          func() error { _, err := aggregate.NewRepository[*Todo](store, "t", aggregate.Options{}); return err },
		"root pointer":          func() error { _, err := aggregate.NewRepository[PtrRoot](store, "p", aggregate.Options{}); return err },
		"new with root pointer": func() error { _, err := aggregate.New[PtrRoot]("1"); return err },
		"apply to nil root":     func() error { return aggregate.Apply(&PtrRoot{}, TodoAdded{}) },
		"apply to root pointer": func() error { return aggregate.Apply(&PtrRoot{Root: new(aggregate.Root)}, TodoAdded{}) },
		"apply to nil":          func() error { return aggregate.Apply((*Todo)(nil), TodoAdded{}) },
		"check":                 func() error { return aggregate.Check[NoRoot]() },
		"check root pointer":    func() error { return aggregate.Check[PtrRoot]() },
	} {
		t.Run(name, func(t *testing.T) {
			err := f()
			if !errors.Is(err, aggregate.ErrNoRoot) {
				t.Fatalf("got %v, want ErrNoRoot", err)
			}
			if !strings.Contains(err.Error(), "aggregate_test.") {
				t.Errorf("error %q does not name the type", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	if err := aggregate.Check[Todo](TodoAdded{}, &TodoRenamed{}, TodoCompleted{}, TodoReopened{}); err != nil {
		t.Errorf("Check[Todo] = %v", err)
	}
	type Other struct{}
	err := aggregate.Check[Todo](TodoAdded{}, Other{}, nil)
	if !errors.Is(err, aggregate.ErrMissingHandler) || !strings.Contains(err.Error(), "OnOther") || !strings.Contains(err.Error(), "nil event") {
		t.Errorf("Check[Todo](…, Other{}, nil) = %v, want ErrMissingHandler naming OnOther and the nil event", err)
	}
}

// TestReplayEqualsApply loads through a repository (from a fake store) what
// was applied live, and compares.
func TestReplayEqualsApply(t *testing.T) {
	store := newMemStore()
	repo, err := aggregate.NewRepository[Todo](store, "todo", aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	live := newTodo(t, "1")
	events := []any{TodoAdded{Title: "a", Tags: []string{"x", "y"}}, TodoRenamed{Title: "b"}, &TodoCompleted{}, TodoReopened{}, TodoRenamed{Title: "c"}}
	for _, e := range events {
		if err := aggregate.Apply(live, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repo.Save(t.Context(), live); err != nil {
		t.Fatalf("Save: %v", err)
	}
	loaded, err := repo.Load(t.Context(), "1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	assertSame(t, loaded, live)
}

// TestConcurrentLoads loads and changes aggregates of one repository from
// several goroutines: for the race detector.
func TestConcurrentLoads(t *testing.T) {
	store := newMemStore()
	repo, err := aggregate.NewRepository[Todo](store, "todo", aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := string(rune('a' + i))
			for j := range 50 {
				todo, err := repo.Load(t.Context(), id)
				if err != nil {
					t.Error(err)
					return
				}
				if err := todo.Rename(id + string(rune('0'+j%10))); err != nil {
					t.Error(err)
					return
				}
				if _, err := repo.Save(t.Context(), todo); err != nil {
					t.Error(err)
					return
				}
			}
			todo, err := repo.Load(t.Context(), id)
			if err != nil || todo.Version() != 50 || todo.Renames != 49 {
				t.Errorf("Load(%q) = version %d, %d renames, %v; want 50, 49", id, todo.Version(), todo.Renames, err)
			}
		})
	}
	wg.Wait()
}

func assertSame(t testing.TB, got, want *Todo) {
	t.Helper()
	if got.ID() != want.ID() || got.Version() != want.Version() || got.CommittedVersion() != want.CommittedVersion() {
		t.Errorf("id/version/committed = %q/%d/%d, want %q/%d/%d", got.ID(), got.Version(), got.CommittedVersion(),
			want.ID(), want.Version(), want.CommittedVersion())
	}
	g, w := *got, *want
	g.Root, w.Root = aggregate.Root{}, aggregate.Root{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("state = %+v, want %+v", g, w)
	}
}
