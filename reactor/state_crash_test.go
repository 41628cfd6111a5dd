package reactor_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// TestStatefulHelperProcess is not a test: it is the child process of
// TestStatefulCrashRecovery. It runs the ledger reactor on the database
// named by the environment, telling the parent once it starts, until it is
// killed.
func TestStatefulHelperProcess(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestStatefulCrashRecovery", testdb.Open))
	testkit.RunChild(t, ledgerReactor(t, s, "ledger", processing.Options{BatchSize: 50, ErrorHandler: processing.NoRetry{}}, nil))
}

// TestStatefulCrashRecovery kills a stateful reactor's process with
// SIGKILL at random moments while it works, five times, restarting it each
// time (with new events appended in between). After every kill its state,
// its position and the events it emitted agree: the table equals a replay
// of the events up to the saved position, every deposit up to it has
// exactly one receipt (for the balance after it), and none after it has
// any — nothing of a batch cut short survives. In the end every deposit
// has exactly one receipt.
func TestStatefulCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 5_000, 20, 100)
		ledgerReactor(t, s, "ledger", processing.Options{}, nil) // migrate before the children
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Processor: "ledger", Kills: 5, MaxPause: 30 * time.Millisecond,
			Helper: "^TestStatefulHelperProcess$",
			AfterKill: func(k testkit.Kill) {
				// On PostgreSQL the COMMIT of the killed child's last
				// batch may still land now: check what stays put between
				// two reads of the position.
				var problems []string
				var unanswered int
				for pos := k.Position; ; {
					problems, unanswered = ledgerProblems(t, s, db.Gorm, "ledger", pos)
					_, again, err := s.LeaseHolder(t.Context(), "ledger")
					if err != nil {
						t.Fatal(err)
					}
					if again == pos {
						break
					}
					t.Logf("kill %d: the position moved from %d to %d after the kill", k.N, pos, again)
					pos = again
				}
				for _, p := range problems {
					t.Errorf("kill %d: %s", k.N, p)
				}
				t.Logf("kill %d: %d deposits unanswered", k.N, unanswered)
				if unanswered == 0 {
					t.Errorf("kill %d came after the reactor had answered every deposit: it did not kill it mid-work", k.N)
				}
				testkit.Fill(t, s, 500, 5, 10)
			},
		})
		// Finish in this process, and check again.
		r := ledgerReactor(t, s, "ledger", processing.Options{ErrorHandler: processing.NoRetry{}}, nil)
		testkit.RunInBackground(t, r)
		for {
			h := testkit.Head(t, s)
			testkit.WaitFor(t, r, h)
			if testkit.Head(t, s) == h { // its own receipts are appended behind it
				break
			}
		}
		if n := checkLedger(t, s, db.Gorm, "ledger", testkit.Head(t, s)); n != 0 {
			t.Errorf("%d deposits unanswered after the last run", n)
		}
	})
}
