package aggregate_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

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

// ListedTodo is a Todo whose handlers are listed for direct calls.
type ListedTodo struct{ Todo }

func (*ListedTodo) Handlers() []aggregate.Handler[ListedTodo] {
	return []aggregate.Handler[ListedTodo]{
		aggregate.On((*ListedTodo).OnTodoAdded),
		aggregate.On((*ListedTodo).OnTodoRenamed),
		aggregate.OnErr((*ListedTodo).OnTodoCompleted),
		aggregate.OnErr((*ListedTodo).OnTodoReopened),
	}
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

// BenchmarkDispatch compares the cost per event of handing an event to its
// handler: a hand-written type switch; Cairn's replay (the load path) and
// Apply (which also records the change), by reflection and with the
// handlers listed (aggregate.Handlers); a plain reflect.Value.Call of the
// method, without finding it; and the route of a method value made by
// reflection (reflect.Value.Method(i).Interface() asserted to func(E) by
// an adapter generic in E, as an event registry could make), which Cairn
// does not take because it is slower than Value.Call.
func BenchmarkDispatch(b *testing.B) {
	b.Run("type_switch", func(b *testing.B) {
		todo := new(Todo)
		for i := 0; b.Loop(); i++ {
			if err := applySwitch(todo, benchEvents[i%len(benchEvents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cairn_replay", func(b *testing.B) {
		todo, _ := aggregate.New[Todo]("1")
		e := event.Event{StreamID: "todo-1"}
		for i := 0; b.Loop(); i++ {
			e.Version = int64(i + 1)
			e.Data = benchEvents[i%len(benchEvents)]
			if err := aggregate.Replay(todo, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cairn_replay_listed", func(b *testing.B) {
		todo, _ := aggregate.New[ListedTodo]("1")
		e := event.Event{StreamID: "todo-1"}
		for i := 0; b.Loop(); i++ {
			e.Version = int64(i + 1)
			e.Data = benchEvents[i%len(benchEvents)]
			if err := aggregate.Replay(todo, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cairn_apply_listed", func(b *testing.B) {
		todo, _ := aggregate.New[ListedTodo]("1")
		for i := 0; b.Loop(); i++ {
			if i%1024 == 0 {
				todo, _ = aggregate.New[ListedTodo]("1")
			}
			if err := aggregate.Apply(todo, benchEvents[i%len(benchEvents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cairn_apply", func(b *testing.B) {
		todo, _ := aggregate.New[Todo]("1")
		for i := 0; b.Loop(); i++ {
			if i%1024 == 0 {
				todo, _ = aggregate.New[Todo]("1")
			}
			if err := aggregate.Apply(todo, benchEvents[i%len(benchEvents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect_call", func(b *testing.B) {
		todo := new(Todo)
		self := reflect.ValueOf(todo)
		methods := make([]reflect.Value, len(benchEvents))
		for i, e := range benchEvents {
			m, _ := self.Type().MethodByName("On" + reflect.TypeOf(e).Name())
			methods[i] = m.Func
		}
		for i := 0; b.Loop(); i++ {
			k := i % len(benchEvents)
			out := methods[k].Call([]reflect.Value{self, reflect.ValueOf(benchEvents[k])})
			if len(out) == 1 && !out[0].IsNil() {
				b.Fatal(out[0].Interface())
			}
		}
	})
	b.Run("method_value_adapter", func(b *testing.B) {
		todo := new(Todo)
		self := reflect.ValueOf(todo)
		adapters := map[reflect.Type]func(m reflect.Value) func(any) error{
			reflect.TypeFor[TodoAdded]():     adapt[TodoAdded],
			reflect.TypeFor[TodoRenamed]():   adapt[TodoRenamed],
			reflect.TypeFor[TodoCompleted](): adapt[TodoCompleted],
			reflect.TypeFor[TodoReopened]():  adapt[TodoReopened],
		}
		bound := map[reflect.Type]func(any) error{}
		for t, adapt := range adapters {
			bound[t] = adapt(self.MethodByName("On" + t.Name()))
		}
		for i := 0; b.Loop(); i++ {
			e := benchEvents[i%len(benchEvents)]
			if err := bound[reflect.TypeOf(e)](e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// adapt turns a method value of type func(E) or func(E) error, made by
// reflection, into a func(any).
func adapt[E any](m reflect.Value) func(any) error {
	switch f := m.Interface().(type) {
	case func(E):
		return func(e any) error { f(e.(E)); return nil }
	case func(E) error:
		return func(e any) error { return f(e.(E)) }
	}
	panic(fmt.Sprintf("adapt: %v", m.Type()))
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
			aggregate.Apply(todo, benchEvents[0])
			for i := 1; i < n; i++ {
				aggregate.Apply(todo, benchEvents[1+i%(len(benchEvents)-1)])
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
			listed, err := aggregate.NewRepository[ListedTodo](store, "todo", aggregate.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Run("repository_listed", func(b *testing.B) {
				for b.Loop() {
					t, err := listed.Load(ctx, "1")
					if err != nil || t.Version() != n {
						b.Fatalf("Load = version %d, %v", t.Version(), err)
					}
				}
			})
		})
	}
}

// BenchmarkLoadInterleaved measures A1's ratios on a busy machine: each
// iteration loads the 1,000-event todo three ways in a row — the floor
// (ReadStream folded by the type switch), the repository by reflection,
// the repository with the handlers listed — so that load from other
// processes falls on all three alike. It reports the median of each, and
// the floor's median over each repository's (the A1 ratio, higher is
// better).
func BenchmarkLoadInterleaved(b *testing.B) {
	const n = 1000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			ctx := b.Context()
			store := newStore(b, kind)
			plain := newRepo(b, store, aggregate.Options{})
			listed, err := aggregate.NewRepository[ListedTodo](store, "todo", aggregate.Options{})
			if err != nil {
				b.Fatal(err)
			}
			todo, _ := plain.Load(ctx, "1")
			aggregate.Apply(todo, benchEvents[0])
			for i := 1; i < n; i++ {
				aggregate.Apply(todo, benchEvents[1+i%(len(benchEvents)-1)])
			}
			if _, err := plain.Save(ctx, todo); err != nil {
				b.Fatal(err)
			}
			var floor, reflected, direct []time.Duration
			for b.Loop() {
				t0 := time.Now()
				t := new(Todo)
				for e, err := range store.ReadStream(ctx, "todo-1", 0, 0) {
					if err != nil {
						b.Fatal(err)
					}
					if err := applySwitch(t, e.Data); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				if a, err := plain.Load(ctx, "1"); err != nil || a.Version() != n {
					b.Fatalf("Load = %v", err)
				}
				t2 := time.Now()
				if a, err := listed.Load(ctx, "1"); err != nil || a.Version() != n {
					b.Fatalf("Load = %v", err)
				}
				t3 := time.Now()
				floor = append(floor, t1.Sub(t0))
				reflected = append(reflected, t2.Sub(t1))
				direct = append(direct, t3.Sub(t2))
			}
			median := func(d []time.Duration) float64 {
				slices.Sort(d)
				return float64(d[len(d)/2])
			}
			f, r, l := median(floor), median(reflected), median(direct)
			b.ReportMetric(f/1e6, "floor-ms")
			b.ReportMetric(f/r, "reflect-ratio")
			b.ReportMetric(f/l, "listed-ratio")
		})
	}
}
