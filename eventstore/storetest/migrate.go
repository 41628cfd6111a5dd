package storetest

import (
	"sync"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// testMigration checks that Migrate can run again, and concurrently from
// several pools and processes, on a fresh database.
func testMigration(t *testing.T, s *suite) {
	t.Run("twice_keeps_the_events", func(t *testing.T) {
		db := s.database(t)
		st := db.migrated(t)
		first := testkit.MustAppend(t, st, "m", event.NoStream, []any{testkit.Noted{Text: "before"}})
		testkit.Migrate(t, st)
		again := db.migrated(t)
		second := testkit.MustAppend(t, again, "m", event.Exact(1), []any{testkit.Noted{Text: "after"}})
		if second[0].Position <= first[0].Position {
			t.Errorf("Append after a second Migrate got position %d, want above %d", second[0].Position, first[0].Position)
		}
		testkit.CheckEvents(t, "ReadStream(m)", testkit.MustCollect(t, "ReadStream", st.ReadStream(t.Context(), "m", 0, 0)), append(first, second...))
	})

	t.Run("concurrently_in_goroutines_succeeds", func(t *testing.T) {
		for round := range 2 {
			db := s.database(t)
			const n = 4
			stores := make([]*eventstore.Store, n)
			for i := range stores {
				stores[i] = db.store(t)
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, st := range stores {
				wg.Go(func() {
					<-start
					errs[i] = st.Migrate(t.Context())
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("round %d: concurrent Migrate() %d of %d = %v, want nil", round, i, n, err)
				}
			}
			if t.Failed() {
				return
			}
			got := testkit.MustAppend(t, stores[0], "s", event.NoStream, []any{testkit.Noted{Text: "x"}})
			testkit.CheckEvents(t, "ReadAll from another store", testkit.MustCollect(t, "ReadAll", stores[n-1].ReadAll(t.Context(), 0, 0)), got)
		}
	})

	t.Run("concurrently_in_processes_succeeds", func(t *testing.T) {
		db := s.database(t)
		children := []*testkit.Child{
			s.startChild(t, childSpec{Role: "migrate", DSN: db.dsn}),
			s.startChild(t, childSpec{Role: "migrate", DSN: db.dsn}),
		}
		st := db.store(t)
		for _, c := range children {
			c.Release(t)
		}
		err := st.Migrate(t.Context())
		for i, c := range children {
			if err := c.Wait(); err != nil {
				t.Errorf("migrating process %d: %v", i, err)
			}
		}
		if err != nil {
			t.Fatalf("Migrate() = %v, want nil", err)
		}
		got := testkit.MustAppend(t, st, "after-migrate", event.NoStream, []any{testkit.Noted{Text: "ok"}})
		testkit.CheckEvents(t, "ReadAll", testkit.MustCollect(t, "ReadAll", st.ReadAll(t.Context(), 0, 0)), got)
	})
}
