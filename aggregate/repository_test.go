package aggregate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// newStore returns a migrated store on a fresh database of the given kind.
func newStore(t testing.TB, kind testdb.Kind) *eventstore.Store {
	t.Helper()
	db := testdb.New(t, kind)
	store, err := eventstore.New(db.Gorm, newRegistry(), eventstore.Options{})
	if err != nil {
		t.Fatalf("eventstore.New: %v", err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return store
}

func newRepo(t testing.TB, store aggregate.Store, opts aggregate.Options) *aggregate.Repository[Todo] {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	repo, err := aggregate.NewRepository[Todo](store, "todo", opts)
	if err != nil {
		t.Fatalf("NewRepository: %v", err)
	}
	return repo
}

func TestRepositoryRoundTrip(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		store := newStore(t, kind)
		repo := newRepo(t, store, aggregate.Options{})

		todo, err := repo.Load(ctx, "42")
		if err != nil {
			t.Fatalf("Load(new): %v", err)
		}
		if todo.Exists() || todo.Version() != 0 || todo.ID() != "42" {
			t.Fatalf("Load(new) = exists %v, version %d, id %q; want a new aggregate 42 at version 0",
				todo.Exists(), todo.Version(), todo.ID())
		}
		if recs, err := repo.Save(ctx, todo); err != nil || recs != nil {
			t.Fatalf("Save(no changes) = %v, %v; want nil, nil", recs, err)
		}
		if err := aggregate.Apply(todo, TodoAdded{Title: "milk", Tags: []string{"shop"}}, TodoRenamed{Title: "oat milk"}); err != nil {
			t.Fatal(err)
		}
		recs, err := repo.Save(ctx, todo, event.WithCorrelationID("corr"), event.WithMetadata(map[string]string{"user": "ann"}))
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		if len(recs) != 2 || recs[0].StreamID != "todo-42" || recs[1].Version != 2 || recs[1].CorrelationID != "corr" || recs[0].Metadata["user"] != "ann" {
			t.Errorf("Save recorded %+v", recs)
		}
		if !todo.Exists() || todo.Version() != 2 || todo.CommittedVersion() != 2 || len(todo.Changes()) != 0 {
			t.Errorf("after Save: exists %v version %d committed %d changes %v",
				todo.Exists(), todo.Version(), todo.CommittedVersion(), todo.Changes())
		}

		loaded, err := repo.Load(ctx, "42")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		assertSame(t, loaded, todo)
		if len(loaded.Changes()) != 0 {
			t.Errorf("loaded aggregate has changes %v", loaded.Changes())
		}

		// The saved aggregate goes on: a second save expects version 2.
		if err := aggregate.Apply(todo, TodoCompleted{}); err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Save(ctx, todo); err != nil {
			t.Fatalf("second Save: %v", err)
		}
		loaded, err = repo.Load(ctx, "42")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		assertSame(t, loaded, todo)
		if v, err := store.StreamVersion(ctx, "todo-42"); err != nil || v != 3 {
			t.Errorf("StreamVersion(todo-42) = %d, %v; want 3", v, err)
		}
	})
}

func TestRepositoryStreamID(t *testing.T) {
	store := newMemStore()
	repo := newRepo(t, store, aggregate.Options{StreamID: func(id string) string { return "todos/" + id }})
	todo, _ := repo.Load(t.Context(), "7")
	aggregate.Apply(todo, TodoAdded{Title: "x"})
	recs, err := repo.Save(t.Context(), todo)
	if err != nil || recs[0].StreamID != "todos/7" {
		t.Errorf("Save with Options.StreamID = %v, %v; want stream todos/7", recs, err)
	}
	if got := newRepo(t, store, aggregate.Options{}).StreamID("7"); got != "todo-7" {
		t.Errorf("default StreamID(7) = %q, want todo-7", got)
	}
}

func TestRepositoryBadInput(t *testing.T) {
	store := newMemStore()
	repo := newRepo(t, store, aggregate.Options{})
	if _, err := repo.Load(t.Context(), ""); !errors.Is(err, aggregate.ErrNoID) {
		t.Errorf("Load(\"\") = %v, want ErrNoID", err)
	}
	if recs, err := repo.Save(t.Context(), &Todo{}); recs != nil || err != nil {
		t.Errorf("Save(&Todo{}) = %v, %v; want nothing to save", recs, err)
	}
	noID := new(Todo)
	if err := noID.Rename("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Save(t.Context(), noID); !errors.Is(err, aggregate.ErrNoID) {
		t.Errorf("Save(new(Todo) with changes) = %v, want ErrNoID", err)
	}
	if _, err := repo.Save(t.Context(), nil); !errors.Is(err, aggregate.ErrNoRoot) {
		t.Errorf("Save(nil) = %v, want ErrNoRoot", err)
	}
	if _, err := aggregate.NewRepository[Todo](store, "", aggregate.Options{}); err == nil {
		t.Error("NewRepository with an empty type name = nil error")
	}
	if _, err := aggregate.NewRepository[Todo](nil, "t", aggregate.Options{}); err == nil {
		t.Error("NewRepository with a nil store = nil error")
	}
	if _, err := aggregate.NewRepository[Todo](store, "t", aggregate.Options{SnapshotEvery: -1}); err == nil {
		t.Error("NewRepository with SnapshotEvery -1 = nil error")
	}
	type appendOnly struct{ aggregate.Store }
	if _, err := aggregate.NewRepository[Todo](appendOnly{store}, "t", aggregate.Options{SnapshotEvery: 10}); err == nil {
		t.Error("NewRepository with snapshots on a store without them = nil error")
	}
}

// A store with a registry: NewRepository checks that every handler's event
// type is registered.
type registryStore struct {
	*memStore
	reg *event.Registry
}

func (s registryStore) Registry() *event.Registry { return s.reg }

type Unregistered struct{}

type Stray struct{ aggregate.Root }

func (s *Stray) OnTodoAdded(TodoAdded)       {}
func (s *Stray) OnUnregistered(Unregistered) {}

func TestRepositoryChecksRegistration(t *testing.T) {
	store := registryStore{newMemStore(), newRegistry()}
	if _, err := aggregate.NewRepository[Todo](store, "todo", aggregate.Options{}); err != nil {
		t.Errorf("NewRepository[Todo] = %v", err)
	}
	_, err := aggregate.NewRepository[Stray](store, "stray", aggregate.Options{})
	if !errors.Is(err, aggregate.ErrInvalidHandler) {
		t.Fatalf("NewRepository[Stray] = %v, want ErrInvalidHandler", err)
	}
	want := "aggregate: invalid event handler: (*aggregate_test.Stray).OnUnregistered takes aggregate_test.Unregistered, which the store's registry does not know: register it or remove the handler"
	if err.Error() != want {
		t.Errorf("NewRepository[Stray] = %q, want %q", err, want)
	}
	// Without a registry to check against, the handler is fine.
	if _, err := aggregate.NewRepository[Stray](newMemStore(), "stray", aggregate.Options{}); err != nil {
		t.Errorf("NewRepository[Stray] on a store without a registry = %v", err)
	}
}

// TestRepositoryErrorsSayEachThingOnce checks the text of a failed save:
// the version conflict names the stream, so the repository does not.
func TestRepositoryErrorsSayEachThingOnce(t *testing.T) {
	ctx := t.Context()
	repo := newRepo(t, newMemStore(), aggregate.Options{})
	a, _ := repo.Load(ctx, "1")
	b, _ := repo.Load(ctx, "1")
	a.Rename("a")
	b.Rename("b")
	if _, err := repo.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, err := repo.Save(ctx, b)
	want := `aggregate: save: event: version conflict on stream "todo-1": expected no stream, stream is at 1`
	if !errors.Is(err, event.ErrVersionConflict) || err == nil || err.Error() != want {
		t.Errorf("Save = %v, want %q", err, want)
	}
	broken := newRepo(t, failingStore{errors.New("disk on fire")}, aggregate.Options{})
	todo, _ := broken.Load(ctx, "2")
	todo.Rename("x")
	_, err = broken.Save(ctx, todo)
	if want := `aggregate: save "todo-2": disk on fire`; err == nil || err.Error() != want {
		t.Errorf("Save = %v, want %q", err, want)
	}
}

// failingStore fails every append with err.
type failingStore struct{ err error }

func (s failingStore) Append(context.Context, string, event.ExpectedVersion, []any, ...event.AppendOption) ([]event.Event, error) {
	return nil, s.err
}

func (s failingStore) ReadStream(context.Context, string, int64, int) iter.Seq2[event.Event, error] {
	return func(func(event.Event, error) bool) {}
}

func TestRepositoryConcurrentSaves(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		for _, existing := range []bool{false, true} {
			t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
				ctx := t.Context()
				store := newStore(t, kind)
				repo := newRepo(t, store, aggregate.Options{})
				want := int64(0)
				if existing {
					todo, _ := repo.Load(ctx, "1")
					aggregate.Apply(todo, TodoAdded{Title: "first"})
					if _, err := repo.Save(ctx, todo); err != nil {
						t.Fatal(err)
					}
					want = 1
				}
				a, err := repo.Load(ctx, "1")
				if err != nil {
					t.Fatal(err)
				}
				b, err := repo.Load(ctx, "1")
				if err != nil {
					t.Fatal(err)
				}
				a.Rename("from a")
				b.Rename("from b")
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, agg := range []*Todo{a, b} {
					wg.Go(func() { _, errs[i] = repo.Save(ctx, agg) })
				}
				wg.Wait()
				wins, conflicts := 0, 0
				for _, err := range errs {
					var vc *event.VersionConflictError
					switch {
					case err == nil:
						wins++
					case errors.Is(err, event.ErrVersionConflict) && errors.As(err, &vc):
						conflicts++
						if vc.StreamID != "todo-1" || vc.Actual != want+1 {
							t.Errorf("conflict %+v, want stream todo-1 at %d", vc, want+1)
						}
					default:
						t.Errorf("Save = %v, want nil or a version conflict", err)
					}
				}
				if wins != 1 || conflicts != 1 {
					t.Fatalf("Save results %v: want exactly one success and one version conflict", errs)
				}
				loaded, err := repo.Load(ctx, "1")
				if err != nil {
					t.Fatal(err)
				}
				if loaded.Version() != want+1 {
					t.Errorf("after the race: version %d, want %d", loaded.Version(), want+1)
				}
			})
		}
	})
}

// TestRepositorySnapshots runs the same commands through a repository with
// snapshots and one without, and compares what they load.
func TestRepositorySnapshots(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		store := newStore(t, kind)
		plain := newRepo(t, store, aggregate.Options{StreamID: func(id string) string { return "plain-" + id }})
		snapped := newRepo(t, store, aggregate.Options{SnapshotEvery: 3, StreamID: func(id string) string { return "snapped-" + id }})

		run := func(repo *aggregate.Repository[Todo], fn func(*Todo) error) {
			t.Helper()
			todo, err := repo.Load(ctx, "1")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := fn(todo); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.Save(ctx, todo); err != nil {
				t.Fatalf("Save: %v", err)
			}
		}
		steps := []func(*Todo) error{
			func(t *Todo) error { return aggregate.Apply(t, TodoAdded{Title: "a", Tags: []string{"x"}}) },
			func(t *Todo) error { return aggregate.Apply(t, TodoRenamed{Title: "b"}, TodoRenamed{Title: "c"}) },
			func(t *Todo) error { return aggregate.Apply(t, TodoCompleted{}) },
			func(t *Todo) error { return aggregate.Apply(t, TodoReopened{}, TodoRenamed{Title: "d"}) },
			func(t *Todo) error { return aggregate.Apply(t, TodoRenamed{Title: "e"}) },
		}
		for i, step := range steps {
			run(plain, step)
			run(snapped, step)
			p, err := plain.Load(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			s, err := snapped.Load(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, s, p)
			if t.Failed() {
				t.Fatalf("after step %d", i)
			}
		}

		// Versions 1, 3, 4, 6, 7: snapshots at 3 and 6.
		snap, ok, err := store.LoadSnapshot(ctx, "snapped-1")
		if err != nil || !ok || snap.Version != 6 || snap.SchemaVersion != 1 {
			t.Fatalf("LoadSnapshot(snapped-1) = version %d schema %d, %v, %v; want version 6 schema 1",
				snap.Version, snap.SchemaVersion, ok, err)
		}
		if _, ok, _ := store.LoadSnapshot(ctx, "plain-1"); ok {
			t.Error("the repository without snapshots saved one")
		}

		// Load uses the snapshot: a doctored one shows through.
		doctored := snap
		doctored.Data = []byte(`{"Title":"from snapshot","Renames":100}`)
		doctored.Version = 7 // the latest version: nothing to replay
		if err := store.SaveSnapshot(ctx, doctored); err != nil {
			t.Fatal(err)
		}
		s, err := snapped.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		if s.Title != "from snapshot" || s.Renames != 100 || s.Version() != 7 || !s.Exists() {
			t.Errorf("Load after a doctored snapshot = %+v version %d, want the snapshot's state at 7", *s, s.Version())
		}

		// A snapshot of another schema version is ignored, as is one that
		// does not decode.
		v2 := newRepo(t, store, aggregate.Options{SnapshotEvery: 3, SnapshotSchemaVersion: 2, StreamID: func(id string) string { return "snapped-" + id }})
		p, _ := plain.Load(ctx, "1")
		s, err = v2.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, s, p)

		var logs bytes.Buffer
		broken := newRepo(t, store, aggregate.Options{SnapshotEvery: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			StreamID: func(id string) string { return "snapped-" + id }})
		doctored.Data = []byte(`not json`)
		doctored.Version = 8
		if err := store.SaveSnapshot(ctx, doctored); err != nil {
			t.Fatal(err)
		}
		s, err = broken.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, s, p)
		if !bytes.Contains(logs.Bytes(), []byte("undecodable snapshot")) {
			t.Errorf("no warning about the undecodable snapshot; logs: %s", logs.String())
		}
	})
}

// The hidden-state case: an aggregate whose state is an unexported
// field. Without a Snapshotter it cannot have snapshots; with one, a load
// from a snapshot keeps the field.

type Hidden struct {
	aggregate.Root
	seen bool
}

func (h *Hidden) OnTodoCompleted(TodoCompleted) { h.seen = true }

type SnappedHidden struct {
	aggregate.Root
	seen bool
}

func (h *SnappedHidden) OnTodoCompleted(TodoCompleted) { h.seen = true }

func (h *SnappedHidden) MarshalSnapshot() ([]byte, error) {
	return strconv.AppendBool(nil, h.seen), nil
}

func (h *SnappedHidden) UnmarshalSnapshot(data []byte) error {
	seen, err := strconv.ParseBool(string(data))
	h.seen = seen
	return err
}

// countingStore counts the events its loads read.
type countingStore struct {
	*eventstore.Store
	mu   sync.Mutex
	read int
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, from int64, limit int) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		for e, err := range s.Store.ReadStream(ctx, stream, from, limit) {
			s.mu.Lock()
			s.read++
			s.mu.Unlock()
			if !yield(e, err) {
				return
			}
		}
	}
}

func (s *countingStore) ReadStreamFromSnapshot(ctx context.Context, stream string, schema int) (event.Snapshot, bool, iter.Seq2[event.Event, error], error) {
	snap, found, events, err := s.Store.ReadStreamFromSnapshot(ctx, stream, schema)
	if err != nil {
		return snap, found, events, err
	}
	return snap, found, func(yield func(event.Event, error) bool) {
		for e, err := range events {
			s.mu.Lock()
			s.read++
			s.mu.Unlock()
			if !yield(e, err) {
				return
			}
		}
	}, nil
}

func (s *countingStore) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.read
	s.read = 0
	return n
}

func TestRepositoryHiddenState(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		store := &countingStore{Store: newStore(t, kind)}

		_, err := aggregate.NewRepository[Hidden](store, "hidden", aggregate.Options{SnapshotEvery: 1})
		if !errors.Is(err, aggregate.ErrNotSnapshotter) || !strings.Contains(err.Error(), "*aggregate_test.Hidden") {
			t.Errorf("NewRepository[Hidden] with snapshots = %v, want ErrNotSnapshotter naming the type", err)
		}
		plain, err := aggregate.NewRepository[Hidden](store, "hidden", aggregate.Options{})
		if err != nil {
			t.Fatal(err)
		}

		repo, err := aggregate.NewRepository[SnappedHidden](store, "hidden", aggregate.Options{SnapshotEvery: 1})
		if err != nil {
			t.Fatal(err)
		}
		h, err := repo.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		if err := aggregate.Apply(h, TodoCompleted{}); err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Save(ctx, h); err != nil {
			t.Fatal(err)
		}
		if snap, ok, err := store.LoadSnapshot(ctx, "hidden-1"); err != nil || !ok || snap.Version != 1 || string(snap.Data) != "true" {
			t.Fatalf("LoadSnapshot = %+v, %v, %v; want version 1, data true", snap, ok, err)
		}
		store.reads()
		h, err = repo.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		if !h.seen || h.Version() != 1 || !h.Exists() {
			t.Errorf("Load from the snapshot: seen %v version %d exists %v, want true, 1, true", h.seen, h.Version(), h.Exists())
		}
		if n := store.reads(); n != 0 {
			t.Errorf("Load from the snapshot at the last version read %d events, want 0", n)
		}
		// Replayed without snapshots, the same stream gives the same state.
		p, err := plain.Load(ctx, "1")
		if err != nil || !p.seen || p.Version() != 1 {
			t.Errorf("Load without snapshots = seen %v version %d, %v; want true, 1", p.seen, p.Version(), err)
		}
	})
}

// TestRepositoryLoadsInOneQuery counts the statements of a Load: one,
// with or without a snapshot, when the stream fits in a page.
func TestRepositoryLoadsInOneQuery(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		db, stmts := testdb.NewCounting(t, kind)
		store, err := eventstore.New(db.Gorm, newRegistry(), eventstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		snapped := newRepo(t, store, aggregate.Options{SnapshotEvery: 4})
		plain := newRepo(t, store, aggregate.Options{})
		todo, err := snapped.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		if err := aggregate.Apply(todo, TodoAdded{Title: "a"}); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if err := aggregate.Apply(todo, TodoRenamed{Title: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
			if _, err := snapped.Save(ctx, todo); err != nil { // a snapshot at version 4
				t.Fatal(err)
			}
		}
		if snap, ok, err := store.LoadSnapshot(ctx, "todo-1"); err != nil || !ok || snap.Version != 4 {
			t.Fatalf("LoadSnapshot = v%d, %v, %v; want a snapshot at version 4", snap.Version, ok, err)
		}
		for _, tt := range []struct {
			name string
			repo *aggregate.Repository[Todo]
			id   string
		}{
			{"from_a_snapshot", snapped, "1"},
			{"without_snapshots", plain, "1"},
			{"with_snapshots_on_but_none_stored", snapped, "2"},
		} {
			q0, e0, b0 := stmts.Count()
			got, err := tt.repo.Load(ctx, tt.id)
			if err != nil {
				t.Fatalf("%s: Load = %v", tt.name, err)
			}
			q, e, b := stmts.Count()
			if q-q0 != 1 || e-e0 != 0 || b-b0 != 0 {
				t.Errorf("%s: Load made %d queries, %d execs and %d transactions, want 1 query", tt.name, q-q0, e-e0, b-b0)
			}
			if tt.id == "1" && (got.Title != "4" || got.Version() != 6) {
				t.Errorf("%s: Load = title %q version %d, want 4 at 6", tt.name, got.Title, got.Version())
			}
		}
	})
}

var (
	_ aggregate.Store                = (*eventstore.Store)(nil)
	_ aggregate.SnapshotStore        = (*eventstore.Store)(nil)
	_ aggregate.SnapshotStreamReader = (*eventstore.Store)(nil)
)
