package aggregate_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
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
	if err := todo.Apply(TodoAdded{Title: "milk", Tags: []string{"shop"}}, TodoRenamed{Title: "oat milk"}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := todo.Apply(TodoCompleted{}); err != nil {
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
	if err := todo.Apply(added, &TodoCompleted{}); err != nil {
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
	if err := todo.Apply(nilEvent); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Apply(nil *TodoRenamed) = %v, want an error about a nil event", err)
	}
	if err := todo.Apply(nil); err == nil {
		t.Errorf("Apply(nil) = nil, want an error")
	}
	if v := todo.Version(); v != 2 {
		t.Errorf("Version() after failed applies = %d, want 2", v)
	}
}

// Embedded root: the Root and the handlers come through an embedded base.

type base struct {
	aggregate.Root
	Count int
}

func (b *base) OnTodoCompleted(TodoCompleted) { b.Count++ }

type Project struct {
	base
	Name string
}

func (p *Project) OnTodoAdded(e TodoAdded) { p.Name = e.Title }

func TestApplyEmbeddedRoot(t *testing.T) {
	if err := aggregate.Check[Project](TodoAdded{}, TodoCompleted{}); err != nil {
		t.Fatalf("Check[Project]: %v", err)
	}
	p, err := aggregate.New[Project]("p")
	if err != nil {
		t.Fatalf("New[Project]: %v", err)
	}
	if err := p.Apply(TodoAdded{Title: "x"}, TodoCompleted{}, TodoCompleted{}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if p.Name != "x" || p.Count != 2 || p.Version() != 3 {
		t.Errorf("after Apply: %+v version %d", *p, p.Version())
	}
}

func TestApplyMissingHandler(t *testing.T) {
	type Unknown struct{}
	todo := newTodo(t, "1")
	err := todo.Apply(TodoAdded{Title: "a"}, Unknown{})
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

// Aggregates with broken handlers.

type Secret struct{}

type Unexported struct{ aggregate.Root }

func (u *Unexported) onSecret(Secret) {}

type WrongResult struct{ aggregate.Root }

func (w *WrongResult) OnTodoAdded(TodoAdded) bool { return true }

type WrongParams struct{ aggregate.Root }

func (w *WrongParams) OnTodoAdded(TodoAdded, int) {}

type WrongType struct{ aggregate.Root }

func (w *WrongType) OnTodoAdded(string) {}

type PointerParam struct{ aggregate.Root }

func (w *PointerParam) OnTodoAdded(*TodoAdded) {}

type ValueReceiver struct {
	aggregate.Root
	Title string
}

func (v ValueReceiver) OnTodoAdded(e TodoAdded) { v.Title = e.Title }

func TestApplyBadHandlers(t *testing.T) {
	tests := []struct {
		name   string
		apply  func() error
		check  error
		target error
		names  []string
	}{
		{"unexported handler is missing", func() error { return apply[Unexported](Secret{}) },
			aggregate.Check[Unexported](Secret{}), aggregate.ErrMissingHandler,
			[]string{"*aggregate_test.Unexported", "aggregate_test.Secret", "OnSecret"}},
		{"wrong result is invalid", func() error { return apply[WrongResult](TodoAdded{}) },
			aggregate.Check[WrongResult](), aggregate.ErrInvalidHandler,
			[]string{"*aggregate_test.WrongResult", "OnTodoAdded", "func(aggregate_test.TodoAdded) bool"}},
		{"two parameters is invalid", func() error { return apply[WrongParams](TodoAdded{}) },
			aggregate.Check[WrongParams](), aggregate.ErrInvalidHandler,
			[]string{"*aggregate_test.WrongParams", "OnTodoAdded", "func(aggregate_test.TodoAdded, int)"}},
		{"wrong parameter type is invalid", func() error { return apply[WrongType](TodoAdded{}) },
			aggregate.Check[WrongType](TodoAdded{}), aggregate.ErrInvalidHandler,
			[]string{"*aggregate_test.WrongType", "OnTodoAdded", "takes string", "aggregate_test.TodoAdded"}},
		{"pointer parameter is invalid", func() error { return apply[PointerParam](&TodoAdded{}) },
			aggregate.Check[PointerParam](TodoAdded{}), aggregate.ErrInvalidHandler,
			[]string{"*aggregate_test.PointerParam", "OnTodoAdded", "takes *aggregate_test.TodoAdded"}},
		{"value receiver is invalid", func() error { return apply[ValueReceiver](TodoAdded{}) },
			aggregate.Check[ValueReceiver](), aggregate.ErrInvalidHandler,
			[]string{"aggregate_test.ValueReceiver", "OnTodoAdded", "value receiver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.apply()
			if !errors.Is(err, tt.target) {
				t.Fatalf("Apply = %v, want %v", err, tt.target)
			}
			for _, s := range tt.names {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Apply error %q does not contain %q", err, s)
				}
			}
			if !errors.Is(tt.check, tt.target) {
				t.Errorf("Check = %v, want %v", tt.check, tt.target)
			}
		})
	}
}

func apply[T any](events ...any) error {
	agg, err := aggregate.New[T]("x")
	if err != nil {
		return err
	}
	return any(agg).(interface{ Apply(...any) error }).Apply(events...)
}

func TestApplyHandlerError(t *testing.T) {
	todo := newTodo(t, "1")
	err := todo.Apply(TodoAdded{Title: "a"}, TodoReopened{}, TodoRenamed{Title: "b"})
	if !errors.Is(err, errAlreadyOpen) {
		t.Fatalf("Apply = %v, want errAlreadyOpen", err)
	}
	if !strings.Contains(err.Error(), "OnTodoReopened") {
		t.Errorf("error %q does not name the handler", err)
	}
	// The event before the failing one stays applied; the failing one and
	// those after it are not.
	if todo.Version() != 1 || todo.Title != "a" || len(todo.Changes()) != 1 {
		t.Errorf("after failing Apply: %+v version %d changes %v", *todo, todo.Version(), todo.Changes())
	}
}

type NoRoot struct{ Title string }

type PtrRoot struct{ *aggregate.Root }

func TestNoRoot(t *testing.T) {
	t.Run("unbound aggregate", func(t *testing.T) {
		todo := &Todo{}
		if err := todo.Apply(TodoAdded{}); !errors.Is(err, aggregate.ErrNoRoot) {
			t.Errorf("(&Todo{}).Apply = %v, want ErrNoRoot", err)
		}
	})
	t.Run("copied aggregate", func(t *testing.T) {
		todo := newTodo(t, "1")
		cp := *todo
		if err := cp.Apply(TodoAdded{Title: "x"}); !errors.Is(err, aggregate.ErrNoRoot) {
			t.Errorf("copy.Apply = %v, want ErrNoRoot", err)
		}
		if todo.Title != "" {
			t.Errorf("original changed through its copy: %+v", *todo)
		}
	})
	for name, f := range map[string]func() error{
		"no root":      func() error { _, err := aggregate.New[NoRoot]("1"); return err },
		"pointer type": func() error { _, err := aggregate.New[*Todo]("1"); return err },
		"root pointer": func() error { _, err := aggregate.New[PtrRoot]("1"); return err },
		"check":        func() error { return aggregate.Check[NoRoot]() },
		"check ptr":    func() error { return aggregate.Check[PtrRoot]() },
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
	if !errors.Is(err, aggregate.ErrMissingHandler) || !strings.Contains(err.Error(), "OnOther") || !strings.Contains(err.Error(), "nil example") {
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
		if err := live.Apply(e); err != nil {
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
