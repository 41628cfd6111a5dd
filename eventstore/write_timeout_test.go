package eventstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// A single-event append whose insert waits on another session's
// uncommitted insert of the same stream version gives up after
// WriteTimeout (the write transaction's lock_timeout, set in the statement
// that takes the ordering lock) and, once the store has tried again for a
// while, fails with ErrUnavailable rather than waiting for the other
// session; it succeeds once the other session has rolled back. Under both
// orderings.
func TestWriteTimeoutSingleEvent(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	for _, o := range []eventstore.Ordering{eventstore.OrderingLock, eventstore.OrderingXID} {
		t.Run(o.String(), func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Postgres)
			s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(),
				eventstore.Options{Ordering: o, WriteTimeout: 300 * time.Millisecond, HorizonWait: 30 * time.Second})
			ctx := t.Context()

			other, err := sql.Open("pgx", db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			tx, err := other.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			// Position 1 is below every position the store makes, under
			// either ordering.
			if _, err := tx.ExecContext(ctx, `INSERT INTO cairn_events (position, event_id, stream_id, version, type, schema_version, data, recorded_at)
				VALUES (1, $1, 's', 1, 'noted', 1, '\x7b7d', now())`, uuid.New()); err != nil {
				t.Fatal(err)
			}

			actx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			got, err := s.Append(actx, "s", event.NoStream, []any{testkit.Noted{Text: "blocked"}})
			if !errors.Is(err, eventstore.ErrUnavailable) || actx.Err() != nil {
				t.Fatalf("Append while another session holds version 1 = %s, %v; want ErrUnavailable before the context ends",
					testkit.Places(got), err)
			}
			t.Logf("Append: %v", err)

			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			got = testkit.MustAppend(t, s, "s", event.NoStream, []any{testkit.Noted{Text: "free"}})
			if len(got) != 1 || got[0].Version != 1 {
				t.Errorf("Append after the rollback = %s, want version 1", testkit.Places(got))
			}
		})
	}
}
