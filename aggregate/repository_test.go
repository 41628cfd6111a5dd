package aggregate_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
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
		if err := todo.Apply(TodoAdded{Title: "milk", Tags: []string{"shop"}}, TodoRenamed{Title: "oat milk"}); err != nil {
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
		if err := todo.Apply(TodoCompleted{}); err != nil {
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
	todo.Apply(TodoAdded{Title: "x"})
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
	if _, err := repo.Load(t.Context(), ""); err == nil {
		t.Error("Load(\"\") = nil error")
	}
	if _, err := repo.Save(t.Context(), &Todo{}); !errors.Is(err, aggregate.ErrNoRoot) {
		t.Errorf("Save(&Todo{}) = %v, want ErrNoRoot", err)
	}
	if _, err := repo.Save(t.Context(), nil); !errors.Is(err, aggregate.ErrNoRoot) {
		t.Errorf("Save(nil) = %v, want ErrNoRoot", err)
	}
	if _, err := aggregate.NewRepository[WrongResult](store, "w", aggregate.Options{}); !errors.Is(err, aggregate.ErrInvalidHandler) {
		t.Errorf("NewRepository[WrongResult] = %v, want ErrInvalidHandler", err)
	}
	if _, err := aggregate.NewRepository[NoRoot](store, "n", aggregate.Options{}); !errors.Is(err, aggregate.ErrNoRoot) {
		t.Errorf("NewRepository[NoRoot] = %v, want ErrNoRoot", err)
	}
	if _, err := aggregate.NewRepository[Todo](store, "", aggregate.Options{}); err == nil {
		t.Error("NewRepository with an empty type name = nil error")
	}
	if _, err := aggregate.NewRepository[Todo](store, "t", aggregate.Options{SnapshotEvery: -1}); err == nil {
		t.Error("NewRepository with SnapshotEvery -1 = nil error")
	}
	type appendOnly struct{ aggregate.Store }
	if _, err := aggregate.NewRepository[Todo](appendOnly{store}, "t", aggregate.Options{SnapshotEvery: 10}); err == nil {
		t.Error("NewRepository with snapshots on a store without them = nil error")
	}
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
					todo.Apply(TodoAdded{Title: "first"})
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
			func(t *Todo) error { return t.Apply(TodoAdded{Title: "a", Tags: []string{"x"}}) },
			func(t *Todo) error { return t.Apply(TodoRenamed{Title: "b"}, TodoRenamed{Title: "c"}) },
			func(t *Todo) error { return t.Apply(TodoCompleted{}) },
			func(t *Todo) error { return t.Apply(TodoReopened{}, TodoRenamed{Title: "d"}) },
			func(t *Todo) error { return t.Apply(TodoRenamed{Title: "e"}) },
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

var (
	_ aggregate.Store         = (*eventstore.Store)(nil)
	_ aggregate.SnapshotStore = (*eventstore.Store)(nil)
)
