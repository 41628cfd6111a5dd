package eventstore_test

import (
	"errors"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// On SQLite, a trigger checks every inserted event's place in its stream,
// and single appends rely on it; a database migrated before the trigger
// existed keeps the checks in the statement until it is migrated again.
func TestSQLiteAppendTrigger(t *testing.T) {
	t.Parallel()
	db, s := setup(t, testdb.SQLite, eventstore.Options{})
	ctx := t.Context()
	testkit.MustAppend(t, s, "a", event.NoStream, []any{testkit.Noted{}, testkit.Noted{}})

	// The trigger refuses an event that would leave a hole.
	err := db.Gorm.Exec(`INSERT INTO cairn_events (event_id, stream_id, version, type, schema_version, data, recorded_at)
		VALUES (x'00000000000000000000000000000001', 'a', 4, 'noted', 1, x'7b7d', 0)`).Error
	if err == nil {
		t.Fatal("inserting version 4 after 2 = nil error, want the trigger's refusal")
	}

	conflicts := func(t *testing.T, s *eventstore.Store) {
		t.Helper()
		for _, exp := range []event.ExpectedVersion{event.Exact(1), event.Exact(5), event.NoStream} {
			_, err := s.Append(ctx, "a", exp, []any{testkit.Noted{}})
			var vc *event.VersionConflictError
			if !errors.As(err, &vc) || vc.Actual != 2 {
				t.Errorf("Append(a, %v) on a stream at 2 = %v, want a version conflict with actual 2", exp, err)
			}
		}
		if v := testkit.StreamVersion(t, s, "a"); v != 2 {
			t.Errorf("StreamVersion(a) = %d, want 2", v)
		}
	}
	conflicts(t, s)

	// Without the trigger (an older schema), a new store still checks.
	if err := db.Gorm.Exec(`DROP TRIGGER cairn_events_append_check`).Error; err != nil {
		t.Fatal(err)
	}
	old := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
	conflicts(t, old)
	testkit.MustAppend(t, old, "a", event.Exact(2), []any{testkit.Noted{}})

	// Migrate brings the trigger back, and the store uses it.
	testkit.Migrate(t, old)
	var n int
	if err := db.Gorm.Raw(`SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'cairn_events_append_check'`).Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("after Migrate: %d triggers (%v), want 1", n, err)
	}
	testkit.MustAppend(t, old, "a", event.Exact(3), []any{testkit.Noted{}})
	if _, err := old.Append(ctx, "a", event.Exact(3), []any{testkit.Noted{}}); !errors.Is(err, event.ErrVersionConflict) {
		t.Errorf("Append(a, Exact(3)) on a stream at 4 = %v, want a version conflict", err)
	}
}
