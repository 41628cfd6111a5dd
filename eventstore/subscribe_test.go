package eventstore_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// A reactor appends from inside its subscription loop, and a migration
// tool from inside a ReadAll loop: neither may deadlock, also on an
// in-memory SQLite database that has a single connection.
func TestAppendInsideReadLoops(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, s *eventstore.Store) {
		ctx := t.Context()
		for i := range 3 {
			testkit.MustAppend(t, s, fmt.Sprintf("acct-%d", i), event.NoStream, []any{testkit.Opened{Owner: fmt.Sprint(i)}})
		}
		// ReadAll loop appending copies.
		n := 0
		for e, err := range s.ReadAll(ctx, 0, 0, testkit.TypeOpened) {
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			testkit.MustAppend(t, s, "copy-"+e.StreamID, event.NoStream, []any{testkit.Noted{Text: e.StreamID}})
			n++
		}
		if n != 3 {
			t.Errorf("ReadAll(opened) gave %d events while appending, want 3", n)
		}

		// Reactor: every Opened gets a Deposited in its stream, caused by it.
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		opened, reactions := 0, 0
		for e, err := range s.Subscribe(sctx, 0, testkit.TypeOpened, testkit.TypeDeposited) {
			if err != nil {
				t.Fatalf("Subscribe after %d opened and %d reactions: %v", opened, reactions, err)
			}
			switch e.Type {
			case testkit.TypeOpened:
				opened++
				testkit.MustAppend(t, s, e.StreamID, event.Exact(e.Version), []any{testkit.Deposited{Amount: 10}},
					event.WithCausationID(e.ID.String()), event.WithCorrelationID(e.ID.String()))
			case testkit.TypeDeposited:
				reactions++
				if e.CausationID == "" {
					t.Errorf("reaction %s has no causation ID", testkit.Places([]event.Event{e}))
				}
			}
			if reactions == 3 {
				break
			}
		}
		if opened != 3 || reactions != 3 {
			t.Errorf("reactor saw %d opened and %d reactions, want 3 and 3", opened, reactions)
		}
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond})
		run(t, s)
	})
	t.Run("sqlite_in_memory", func(t *testing.T) {
		t.Parallel()
		db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.CloseWhenDone(t, db)
		run(t, testkit.MigratedStore(t, db, testkit.NewRegistry(), eventstore.Options{PollInterval: 20 * time.Millisecond}))
	})
}

// On PostgreSQL a subscription wakes on the NOTIFY of a commit by another
// store, without waiting for a poll, and keeps doing so after its LISTEN
// connection is killed.
func TestSubscribeListenOnPostgres(t *testing.T) {
	t.Parallel()
	if !slices.Contains(testdb.Kinds(), testdb.Postgres) {
		t.Skipf("PostgreSQL only; set %s", testdb.EnvPostgres)
	}
	db := testdb.New(t, testdb.Postgres)
	ctx := t.Context()
	writer := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})

	// The subscriber's sessions carry a name of their own, so that the
	// test can find its LISTEN connection.
	appName := fmt.Sprintf("cairn_listen_%d", time.Now().UnixNano())
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	subDB, err := eventstore.OpenPostgres(u.String())
	if err != nil {
		t.Fatal(err)
	}
	testkit.CloseWhenDone(t, subDB)
	// Polling so rare that only notifications can wake the subscription
	// within the test.
	sub := testkit.NewStore(t, subDB, testkit.NewRegistry(), eventstore.Options{PollInterval: time.Hour})
	f := testkit.Follow(ctx, sub, 0)

	var want []event.Event
	want = append(want, testkit.MustAppend(t, writer, "n", event.NoStream, []any{testkit.Noted{Text: "one"}})...)
	if !f.WaitFor(t, want) {
		t.FailNow()
	}
	// Later commits wake it too (not only the re-read after LISTEN).
	for i := range 3 {
		want = append(want, testkit.MustAppend(t, writer, "n", event.Any, []any{testkit.Noted{Text: fmt.Sprint(i)}})...)
		if !f.WaitFor(t, want) {
			t.FailNow()
		}
	}

	// Kill the LISTEN connection.
	killed := int64(0)
	for start := time.Now(); killed == 0; time.Sleep(10 * time.Millisecond) {
		if err := db.Gorm.WithContext(ctx).Raw(
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ? AND query LIKE 'LISTEN%'",
			appName).Scan(&killed).Error; err != nil {
			t.Fatal(err)
		}
		if killed == 0 && time.Since(start) > 10*time.Second {
			t.Fatalf("no LISTEN session named %s found", appName)
		}
	}
	for i := range 3 {
		want = append(want, testkit.MustAppend(t, writer, "n", event.Any, []any{testkit.Noted{Text: fmt.Sprint("after ", i)}})...)
		if !f.WaitFor(t, want) {
			t.FailNow()
		}
	}
	testkit.CheckEvents(t, "Subscribe", f.Await(t, want), want)
}
