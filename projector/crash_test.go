package projector_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// TestHelperProcess is not a test: it is the child process of
// TestCrashRecovery. It runs the accounts projector on the database named
// by the environment, telling the parent once it starts, until it is killed.
func TestHelperProcess(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestCrashRecovery", testdb.Open))
	testkit.RunChild(t, testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{BatchSize: 100, ErrorHandler: processing.NoRetry{}}}))
}

// TestCrashRecovery kills a projector process with SIGKILL at random
// moments while it works, five times, restarting it each time (with new
// events appended in between); the table it leaves must equal a clean
// rebuild. Each kill must leave events after the saved position (the
// child was killed while it worked: the last event of every Fill is one
// the projector handles, so a caught-up projector's position is the
// head).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 15_000, 40, 1000)
		testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{}}) // migrate before the children
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Processor: "accounts", Kills: 5, MaxPause: 20 * time.Millisecond,
			AfterKill: func(k testkit.Kill) {
				if k.Position >= k.Head {
					t.Errorf("kill %d came after the projector had caught up (position %d, head %d): it did not kill it mid-work", k.N, k.Position, k.Head)
				}
				testkit.Fill(t, s, 2000, 45, 100)
			},
		})
		// Finish in this process, then rebuild from scratch and compare.
		head, err := s.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		clean := testkit.AccountsProjector(t, s, "accounts-clean", "accounts_clean", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, clean)
		testkit.WaitFor(t, clean, head)
		want := testkit.ReadAccounts(t, db.Gorm, "accounts_clean")
		checkAccounts(t, db.Gorm, "accounts", want)
		checkAccounts(t, db.Gorm, "accounts_clean", testkit.FoldAccounts(t, s, 0))
	})
}
