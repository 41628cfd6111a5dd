package eventstore_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

func TestTablePrefix(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		ctx := t.Context()
		a := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TablePrefix: "alpha_"})
		b := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TablePrefix: "beta_"})
		def := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})

		// Before the default store is migrated, it has no tables.
		if _, err := def.Append(ctx, "s", event.NoStream, []any{testkit.Noted{}}); err == nil {
			t.Errorf("Append on an unmigrated default-prefix store = nil error, want an error (its tables should not exist)")
		}
		testkit.Migrate(t, def)

		ea := testkit.MustAppend(t, a, "s", event.NoStream, []any{testkit.Noted{Text: "alpha"}, testkit.Noted{Text: "alpha 2"}})
		eb := testkit.MustAppend(t, b, "s", event.NoStream, []any{testkit.Noted{Text: "beta"}})
		testkit.MustAppend(t, b, "only-beta", event.NoStream, []any{testkit.Noted{Text: "beta"}})

		testkit.CheckEvents(t, "alpha ReadStream(s)", testkit.MustCollect(t, "ReadStream", a.ReadStream(ctx, "s", 0, 0)), ea)
		testkit.CheckEvents(t, "beta ReadStream(s)", testkit.MustCollect(t, "ReadStream", b.ReadStream(ctx, "s", 0, 0)), eb)
		testkit.CheckEvents(t, "alpha ReadAll", testkit.MustCollect(t, "ReadAll", a.ReadAll(ctx, 0, 0)), ea)
		if v := testkit.StreamVersion(t, a, "only-beta"); v != 0 {
			t.Errorf("alpha StreamVersion(only-beta) = %d, want 0", v)
		}
		if h := testkit.Head(t, def); h != 0 {
			t.Errorf("default-prefix Head() = %d, want 0", h)
		}
		if all := testkit.MustCollect(t, "ReadAll", def.ReadAll(ctx, 0, 0)); len(all) != 0 {
			t.Errorf("default-prefix ReadAll() = %s, want nothing", testkit.Places(all))
		}
		if err := b.DeleteStream(ctx, "s", event.Any); err != nil {
			t.Fatalf("beta DeleteStream(s) = %v", err)
		}
		// The deletion in beta leaves alpha's stream alone.
		testkit.MustAppend(t, a, "s", event.Exact(2), []any{testkit.Noted{Text: "alpha 3"}})
		if _, err := b.Append(ctx, "s", event.Any, []any{testkit.Noted{}}); !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("beta Append(s) after its deletion = %v, want ErrStreamDeleted", err)
		}
	})
}

func TestOptionsRejected(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.SQLite)
	for _, tt := range []struct {
		name string
		opts eventstore.Options
	}{
		{"negative_poll_interval", eventstore.Options{PollInterval: -1}},
		{"negative_page_size", eventstore.Options{PageSize: -1}},
		{"negative_max_batch_events", eventstore.Options{MaxBatchEvents: -1}},
		{"negative_write_timeout", eventstore.Options{WriteTimeout: -1}},
		{"table_prefix_with_quote", eventstore.Options{TablePrefix: `x"; DROP TABLE y; --`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := eventstore.New(db.Gorm, testkit.NewRegistry(), tt.opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("New(%+v) = %v, want ErrInvalidArgument", tt.opts, err)
			}
		})
	}
	if _, err := eventstore.New(nil, testkit.NewRegistry(), eventstore.Options{}); err == nil {
		t.Errorf("New(nil db) = nil error, want an error")
	}
	if _, err := eventstore.New(db.Gorm, nil, eventstore.Options{}); err == nil {
		t.Errorf("New(nil registry) = nil error, want an error")
	}
}

// The default event IDs are time-ordered (UUID version 7): each append's
// IDs sort after the previous append's, so their index grows at its end.
func TestDefaultEventIDsAreTimeOrdered(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		var prev []byte
		for i := range 20 {
			evs := testkit.MustAppend(t, s, "ids", event.Exact(int64(2*i)), []any{testkit.Noted{}, testkit.Noted{}})
			for _, e := range evs {
				if v := e.ID.Version(); v != 7 {
					t.Fatalf("event %d: ID %s is of version %d, want 7", e.Position, e.ID, v)
				}
				if prev != nil && bytes.Compare(prev, e.ID[:]) >= 0 {
					t.Fatalf("event %d: ID %s does not sort after the previous event's %x", e.Position, e.ID, prev)
				}
				prev = append(prev[:0], e.ID[:]...)
			}
		}
	})
}

// Options.TypeIndex adds the (type, position) index at Migrate; without it
// there is none, and type-filtered reads still find every event of their
// types.
func TestTypeIndexOption(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		ctx := t.Context()
		plain := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TablePrefix: "plain_"})
		indexed := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TablePrefix: "indexed_", TypeIndex: true})
		if db.Gorm.Migrator().HasIndex("plain_events", "plain_events_type_position_idx") {
			t.Errorf("a store migrated without TypeIndex has the type index")
		}
		if !db.Gorm.Migrator().HasIndex("indexed_events", "indexed_events_type_position_idx") {
			t.Errorf("a store migrated with TypeIndex has no type index")
		}
		for _, s := range []*eventstore.Store{plain, indexed} {
			testkit.MustAppend(t, s, "a", event.NoStream, []any{testkit.Noted{Text: "1"}, testkit.Opened{}, testkit.Noted{Text: "2"}})
			got := testkit.MustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0, testkit.TypeNoted))
			if len(got) != 2 || got[0].Position != 1 || got[1].Position != 3 {
				t.Errorf("ReadAll of type noted = %v, want the events at 1 and 3", got)
			}
		}
	})
}
