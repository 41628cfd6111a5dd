package aggregate_test

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
)

// benchEvents is a mix of the events a todo sees, as a load decodes them.
var benchEvents = []any{
	TodoAdded{Title: "buy milk", Tags: []string{"shop", "home"}},
	TodoRenamed{Title: "buy oat milk"},
	TodoCompleted{},
	TodoReopened{},
	TodoRenamed{Title: "buy soy milk"},
	TodoCompleted{},
}

// The Memo domain mirrors the Todo one, with event types that are never
// registered with an event.Registry: its On<Event> methods are called
// through reflection, the fallback path.

type MemoAdded struct {
	Title string
	Tags  []string
}

type MemoRenamed struct{ Title string }

type MemoCompleted struct{}

type MemoReopened struct{}

type Memo struct {
	aggregate.Root
	Title   string
	Tags    []string
	Done    bool
	Renames int
}

func (m *Memo) OnMemoAdded(e MemoAdded) {
	m.Title = e.Title
	m.Tags = append([]string(nil), e.Tags...)
}

func (m *Memo) OnMemoRenamed(e MemoRenamed) {
	m.Title = e.Title
	m.Renames++
}

func (m *Memo) OnMemoCompleted(MemoCompleted) error {
	m.Done = true
	return nil
}

func (m *Memo) OnMemoReopened(MemoReopened) error {
	if !m.Done {
		return errAlreadyOpen
	}
	m.Done = false
	return nil
}

// memoEvents are benchEvents for a Memo.
var memoEvents = []any{
	MemoAdded{Title: "buy milk", Tags: []string{"shop", "home"}},
	MemoRenamed{Title: "buy oat milk"},
	MemoCompleted{},
	MemoReopened{},
	MemoRenamed{Title: "buy soy milk"},
	MemoCompleted{},
}

// applySwitch is the hand-written alternative to On<Event> dispatch: a type
// switch calling the same handlers.
func applySwitch(t *Todo, e any) error {
	switch e := e.(type) {
	case TodoAdded:
		t.OnTodoAdded(e)
	case TodoRenamed:
		t.OnTodoRenamed(e)
	case TodoCompleted:
		return t.OnTodoCompleted(e)
	case TodoReopened:
		return t.OnTodoReopened(e)
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}

// BenchmarkDispatch compares the cost per event of replaying through
// On<Event> methods with a hand-written type switch, and of Apply (which
// also records the change): for registered event types (the Todo events,
// called directly) and for event types never registered (the Memo events,
// called through reflection).
func BenchmarkDispatch(b *testing.B) {
	newRegistry() // registers the Todo event types
	b.Run("type_switch", func(b *testing.B) {
		todo := new(Todo)
		var version int64
		for i := 0; b.Loop(); i++ {
			if err := applySwitch(todo, benchEvents[i%len(benchEvents)]); err != nil {
				b.Fatal(err)
			}
			version++
		}
	})
	b.Run("on_method_replay", func(b *testing.B) {
		todo, _ := aggregate.New[Todo]("1")
		e := event.Event{StreamID: "todo-1"}
		for i := 0; b.Loop(); i++ {
			e.Version = int64(i + 1)
			e.Data = benchEvents[i%len(benchEvents)]
			if err := aggregate.Replay(&todo.Root, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("on_method_apply", func(b *testing.B) {
		todo, _ := aggregate.New[Todo]("1")
		for i := 0; b.Loop(); i++ {
			if i%1024 == 0 {
				todo, _ = aggregate.New[Todo]("1")
			}
			if err := todo.Apply(benchEvents[i%len(benchEvents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("on_method_replay_unregistered", func(b *testing.B) {
		memo, _ := aggregate.New[Memo]("1")
		e := event.Event{StreamID: "memo-1"}
		for i := 0; b.Loop(); i++ {
			e.Version = int64(i + 1)
			e.Data = memoEvents[i%len(memoEvents)]
			if err := aggregate.Replay(&memo.Root, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("on_method_apply_unregistered", func(b *testing.B) {
		memo, _ := aggregate.New[Memo]("1")
		for i := 0; b.Loop(); i++ {
			if i%1024 == 0 {
				memo, _ = aggregate.New[Memo]("1")
			}
			if err := memo.Apply(memoEvents[i%len(memoEvents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoad loads an aggregate of 1,000 events: through the repository
// without and with a snapshot, and as the floor, a plain read of the stream
// folded with the type switch.
func BenchmarkLoad(b *testing.B) {
	const n = 1000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			ctx := b.Context()
			store := newStore(b, kind)
			plain := newRepo(b, store, aggregate.Options{})
			snapped := newRepo(b, store, aggregate.Options{SnapshotEvery: n})
			todo, _ := plain.Load(ctx, "1")
			todo.Apply(benchEvents[0])
			for i := 1; i < n; i++ {
				todo.Apply(benchEvents[1+i%(len(benchEvents)-1)])
			}
			// Saved through the snapshotting repository: one snapshot at n.
			if _, err := snapped.Save(ctx, todo); err != nil {
				b.Fatal(err)
			}
			if _, ok, _ := store.LoadSnapshot(ctx, "todo-1"); !ok {
				b.Fatal("no snapshot")
			}
			b.Run("floor_read_and_switch", func(b *testing.B) {
				for b.Loop() {
					t := new(Todo)
					for e, err := range store.ReadStream(ctx, "todo-1", 0, 0) {
						if err != nil {
							b.Fatal(err)
						}
						if err := applySwitch(t, e.Data); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			for name, repo := range map[string]*aggregate.Repository[Todo]{"repository": plain, "repository_snapshot": snapped} {
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						t, err := repo.Load(ctx, "1")
						if err != nil || t.Version() != n {
							b.Fatalf("Load = version %d, %v", t.Version(), err)
						}
					}
				})
			}
		})
	}
}
