package eventstore_test

import (
	"sync"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{})
		first := mustAppend(t, s, "m", event.NoStream, []any{Note{Text: "before"}})
		migrate(t, s)
		again := newStore(t, db.Gorm, newRegistry(), eventstore.Options{})
		migrate(t, again)
		second := mustAppend(t, again, "m", event.Exact(1), []any{Note{Text: "after"}})
		if second[0].Position <= first[0].Position {
			t.Errorf("Append after a second Migrate got position %d, want above %d", second[0].Position, first[0].Position)
		}
		checkEvents(t, "ReadStream(m)", mustCollect(t, "ReadStream", s.ReadStream(t.Context(), "m", 0, 0)), append(first, second...))
	})
}

// Several stores, each on its own connection pool, migrate a fresh
// database at the same time.
func TestMigrateConcurrentGoroutines(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		for round := range 2 {
			db := testdb.New(t, kind)
			const n = 4
			stores := make([]*eventstore.Store, n)
			for i := range stores {
				stores[i] = newStore(t, openAgain(t, db), newRegistry(), eventstore.Options{})
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, s := range stores {
				wg.Go(func() {
					<-start
					errs[i] = s.Migrate(t.Context())
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
			got := mustAppend(t, stores[0], "s", event.NoStream, []any{Note{Text: "x"}})
			checkEvents(t, "ReadAll from another store", mustCollect(t, "ReadAll", stores[n-1].ReadAll(t.Context(), 0, 0)), got)
		}
	})
}
