package reactor_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
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
				unanswered, ahead := receiptsAt(t, s, k.Position)
				t.Logf("kill %d: %d deposits unanswered, %d receipts emitted past the saved position", k.N, unanswered, ahead)
				if unanswered == 0 {
					t.Errorf("kill %d came after the reactor had answered every deposit: it did not kill it mid-work", k.N)
				}
				if ahead > 0 {
					partway++
				}
				testkit.Fill(t, s, 100, 5, 10)
			},
		})
		if partway == 0 {
			t.Errorf("no kill came partway through a batch (receipts emitted past the saved position)")
		}
		// Finish in this process, and check the receipts.
		r := receiptReactor(t, s, "receipts", processing.Options{ErrorHandler: processing.NoRetry{}}, nil)
		testkit.RunInBackground(t, r)
		for {
			h := testkit.Head(t, s)
			testkit.WaitFor(t, r, h)
			if testkit.Head(t, s) == h { // the reactor's own receipts are appended behind it
				break
			}
		}
		checkReceipts(t, s)
	})
}

// receiptsAt reads s after a kill that left the reactor's saved position
// at position: how many deposits have no receipt yet, and how many
// receipts answer deposits after the position (emitted in a batch whose
// position was not saved).
func receiptsAt(t testing.TB, s *eventstore.Store, position int64) (unanswered, ahead int) {
	t.Helper()
	deposits := make(map[string]int64) // event ID → position
	answered := make(map[string]bool)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch e.Data.(type) {
		case testkit.Deposited:
			deposits[e.ID.String()] = e.Position
		case testkit.ReceiptIssued:
			answered[e.CausationID] = true
			if deposits[e.CausationID] > position {
				ahead++
			}
		}
	}
	for id := range deposits {
		if !answered[id] {
			unanswered++
		}
	}
	return unanswered, ahead
}
