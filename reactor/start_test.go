package reactor_test

import (
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// A reactor registered from the head of a store with 10,000 events
// handles none of them and every later one; restarted before any new
// event, it still handles none of the old ones.
func TestStartFromHead(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		old := testkit.Fill(t, s, 10_000, 50, 500)
		opts := processing.Options{Start: processing.FromHead(), ErrorHandler: processing.NoRetry{}}
		var calls atomic.Int64

		r := receiptReactor(t, s, "new-mail", opts, &calls) // registered by its Migrate
		stop := testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, old)
		testkit.Fill(t, s, 100, 5, 10)
		head := testkit.Head(t, s)
		testkit.WaitFor(t, r, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got, want := calls.Load(), int64(testkit.Deposits(100)); got != want {
			t.Errorf("handled %d deposits, want the %d stored after it was registered", got, want)
		}

		// Restarted before any new event: nothing old is handled.
		calls.Store(0)
		r = receiptReactor(t, s, "new-mail", opts, &calls)
		stop = testkit.RunInBackground(t, r)
		head = testkit.Head(t, s) // its own receipts
		testkit.WaitFor(t, r, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("after a restart, handled %d deposits, want none", n)
		}
		if n := checkReceiptsAfter(t, s, old); n != testkit.Deposits(100) {
			t.Errorf("%d receipts, want %d", n, testkit.Deposits(100))
		}
	})
}

// checkReceiptsAfter checks that every deposit after position has one
// receipt and none before it has any, and returns the number of receipts.
func checkReceiptsAfter(t testing.TB, s *eventstore.Store, position int64) (receipts int) {
	t.Helper()
	deposits := make(map[string]int64) // ID → position
	byCause := make(map[string]int)
	for _, e := range testkit.MustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0)) {
		switch e.Data.(type) {
		case testkit.Deposited:
			deposits[e.ID.String()] = e.Position
		case testkit.ReceiptIssued:
			receipts++
			byCause[e.CausationID]++
		}
	}
	for id, pos := range deposits {
		if want := map[bool]int{true: 1, false: 0}[pos > position]; byCause[id] != want {
			t.Errorf("deposit %d has %d receipts, want %d", pos, byCause[id], want)
		}
	}
	return receipts
}
