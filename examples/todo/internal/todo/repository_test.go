package todo_test

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"testing"
	"time"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/internal/testdb"
)

// countingStore is the event store, counting the events that loads read.
type countingStore struct {
	*eventstore.Store
	read int
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, from int64, limit int) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		for e, err := range s.Store.ReadStream(ctx, stream, from, limit) {
			s.read++
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
			s.read++
			if !yield(e, err) {
				return
			}
		}
	}, nil
}

// TestSnapshots runs every command, accepted and rejected, on todos that
// are loaded from a snapshot each time (SnapshotEvery: 1), on both
// databases: the snapshot must carry all the state the rules need.
func TestSnapshots(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		reg := event.NewRegistry(event.RegistryOptions{})
		if err := todo.RegisterEvents(reg); err != nil {
			t.Fatal(err)
		}
		es, err := eventstore.New(testdb.New(t, kind).Gorm, reg, eventstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := es.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		store := &countingStore{Store: es}
		logger := slog.New(slog.NewTextHandler(t.Output(), nil))
		repo, err := todo.NewRepository(store, aggregate.Options{SnapshotEvery: 1, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		var d command.Dispatcher
		d.Use(command.Validation())
		if err := todo.HandleCommands(&d, repo); err != nil {
			t.Fatal(err)
		}

		const (
			a = "6f1d7e2a-1111-4c1e-9a6b-00000000000a" // added, amended, completed
			b = "6f1d7e2a-1111-4c1e-9a6b-00000000000b" // added, abandoned
			c = "6f1d7e2a-1111-4c1e-9a6b-00000000000c" // never added
		)
		date := todo.Text("2017-06-13")
		steps := []struct {
			cmd     any
			wantErr error // nil: accepted
		}{
			{todo.Add{ID: a, Title: todo.Text("Buy milk")}, nil},
			{todo.Add{ID: a, Title: todo.Text("Again")}, todo.ErrAlreadyExists},
			{todo.Amend{ID: a, Description: todo.Text("2 litres")}, nil},
			{todo.Complete{ID: a, CompletedOn: date}, nil},
			{todo.Amend{ID: a, Title: todo.Text("Buy oat milk")}, todo.ErrIsComplete},
			{todo.Complete{ID: a, CompletedOn: date}, todo.ErrAlreadyComplete},
			{todo.Abandon{ID: a, AbandonedOn: date}, todo.ErrAlreadyComplete},
			{todo.Add{ID: b, Title: todo.Text("Call Bob")}, nil},
			{todo.Abandon{ID: b, AbandonedOn: date}, nil},
			{todo.Amend{ID: b}, todo.ErrIsAbandoned},
			{todo.Abandon{ID: b, AbandonedOn: date}, todo.ErrAlreadyAbandoned},
			{todo.Complete{ID: b, CompletedOn: date}, todo.ErrAlreadyAbandoned},
			{todo.Amend{ID: c}, todo.ErrDoesNotExist},
			{todo.Complete{ID: c, CompletedOn: date}, todo.ErrDoesNotExist},
			{todo.Abandon{ID: c, AbandonedOn: date}, todo.ErrDoesNotExist},
		}
		var last int64
		for i, st := range steps {
			store.read = 0
			res, err := d.Dispatch(ctx, st.cmd)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("step %d: Dispatch(%#v) = %v, want %v", i, st.cmd, err, st.wantErr)
			}
			if store.read != 0 {
				t.Errorf("step %d: the load read %d events, want 0 (all from the snapshot)", i, store.read)
			}
			if st.wantErr == nil {
				if res.Position <= last || len(res.Events) != 1 || res.Events[0].Position != res.Position {
					t.Errorf("step %d: Dispatch = %+v, want one event after position %d", i, res, last)
				}
				last = res.Position
			}
		}

		snap, ok, err := store.LoadSnapshot(ctx, todo.StreamID(a))
		if err != nil || !ok {
			t.Fatalf("LoadSnapshot = %v, %v", ok, err)
		}
		if want := `{"added":true,"completed":true,"abandoned":false}`; snap.Version != 3 || snap.SchemaVersion != todo.SnapshotSchemaVersion || string(snap.Data) != want {
			t.Errorf("snapshot = version %d schema %d %s, want version 3 schema %d %s", snap.Version, snap.SchemaVersion, snap.Data, todo.SnapshotSchemaVersion, want)
		}

		// A snapshot of another schema version is ignored: the todo is
		// replayed from its events, and its rules still hold.
		old := event.Snapshot{StreamID: todo.StreamID(b), Version: 2, SchemaVersion: todo.SnapshotSchemaVersion + 1,
			Data: []byte(`{"added":false}`), RecordedAt: time.Now()}
		if err := store.SaveSnapshot(ctx, old); err != nil {
			t.Fatal(err)
		}
		store.read = 0
		if _, err := d.Dispatch(ctx, todo.Amend{ID: b}); !errors.Is(err, todo.ErrIsAbandoned) {
			t.Errorf("Amend after a snapshot of another schema = %v, want ErrIsAbandoned", err)
		}
		if store.read != 2 {
			t.Errorf("the load read %d events, want the 2 of the stream", store.read)
		}
	})
}

// TestNewRepositoryOptions checks that NewRepository passes its options on
// and names the streams with StreamID.
func TestNewRepositoryOptions(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := todo.RegisterEvents(reg); err != nil {
		t.Fatal(err)
	}
	es, err := eventstore.New(db.Gorm, reg, eventstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := todo.NewRepository(es, aggregate.Options{SnapshotEvery: -1}); err == nil {
		t.Error("NewRepository with SnapshotEvery -1 = nil error")
	}
	repo, err := todo.NewRepository(es, aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := repo.StreamID(id); got != todo.StreamID(id) {
		t.Errorf("StreamID(%q) = %q, want %q", id, got, todo.StreamID(id))
	}
}
