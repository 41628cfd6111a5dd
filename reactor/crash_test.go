package reactor_test

import (
	"testing"
	"time"

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
// moments, five times, restarting it each time (with new events appended
// in between); in the end every deposit has exactly one receipt.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 2_000, 20, 100)
		receiptReactor(t, s, "receipts", processing.Options{}, nil) // migrate before the children
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Processor: "receipts", Kills: 5, MaxPause: 200 * time.Millisecond,
			AfterKill: func() { testkit.Fill(t, s, 100, 5, 10) },
		})
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
