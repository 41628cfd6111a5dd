package reactor_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// TestHelperProcess is not a test: it is the child process of
// TestCrashRecovery. It runs the receipt reactor on the database named by
// the environment, telling the parent once it starts, until it is killed.
func TestHelperProcess(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestCrashRecovery", testdb.Open))
	testkit.RunChild(t, receiptReactor(t, s, "receipts", processing.Options{BatchSize: 50, ErrorHandler: processing.NoRetry{}}, nil))
}

// TestCrashRecovery kills a reactor process with SIGKILL at random
// moments while it works, five times, restarting it each time (with new
// events appended in between); in the end every deposit has exactly one
// receipt. Each kill must leave deposits unanswered (the child was killed
// while it worked), and at least one must come partway through a batch:
// receipts emitted for deposits after the saved position, which the next
// child handles again.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 2_000, 20, 100)
		receiptReactor(t, s, "receipts", processing.Options{}, nil) // migrate before the children
		partway := 0
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Processor: "receipts", Kills: 5, MaxPause: 100 * time.Millisecond,
			AfterKill: func(k testkit.Kill) {
				c := receiptsAt(t, s, k.Position)
				unanswered, ahead := c.unanswered, c.ahead
				t.Logf("kill %d: %d deposits unanswered, %d receipts emitted past the saved position", k.N, unanswered, ahead)
				if unanswered == 0 {
					t.Errorf("kill %d came after the reactor had answered every deposit: it did not kill it mid-work", k.N)
				}
				if ahead > 0 {
					partway++
				}
				testkit.Fill(t, s, 1_000, 20, 100) // real work for the next child, however far the last one got ahead
			},
		})
		if partway == 0 {
			t.Errorf("no kill came partway through a batch (receipts emitted past the saved position)")
		}
		// Finish in this process, and check the receipts.
		runToHead(t, s, receiptReactor(t, s, "receipts", processing.Options{ErrorHandler: processing.NoRetry{}}, nil))
		checkReceipts(t, s)
	})
}

// receiptCount is what receiptsAt counts.
type receiptCount struct {
	unanswered int // deposits without a receipt
	skipped    int // deposits up to the position without a receipt
	ahead      int // receipts of deposits after the position
	twice      int // deposits with more than one receipt
}

// receiptsAt reads s after a kill that left the reactor's saved position
// at position and counts the deposits and receipts (receiptCount):
// receipts answering deposits after the position were emitted in work
// whose position was not saved.
func receiptsAt(t testing.TB, s *eventstore.Store, position int64) receiptCount {
	t.Helper()
	var c receiptCount
	deposits := make(map[string]int64) // event ID → position
	receipts := make(map[string]int)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch e.Data.(type) {
		case testkit.Deposited:
			deposits[e.ID.String()] = e.Position
		case testkit.ReceiptIssued:
			receipts[e.CausationID]++
			if deposits[e.CausationID] > position {
				c.ahead++
			}
		}
	}
	for id, pos := range deposits {
		switch n := receipts[id]; {
		case n > 1:
			c.twice++
		case n == 0:
			c.unanswered++
			if pos <= position {
				c.skipped++
			}
		}
	}
	return c
}

// runToHead runs r in the background until it has passed the head of s,
// the receipts it emits included.
func runToHead(t testing.TB, s *eventstore.Store, r *reactor.Reactor) {
	t.Helper()
	testkit.RunInBackground(t, r)
	for {
		h := testkit.Head(t, s)
		testkit.WaitFor(t, r, h)
		if testkit.Head(t, s) == h { // the reactor's own receipts are appended behind it
			return
		}
	}
}
