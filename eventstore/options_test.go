package eventstore_test

import (
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
