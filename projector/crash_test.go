package projector_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fixture"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
)

// Environment of the helper process (see TestHelperProcess).
const (
	envHelper = "CAIRN_PROJECTOR_HELPER"
	envKind   = "CAIRN_PROJECTOR_KIND"
	envDSN    = "CAIRN_PROJECTOR_DSN"
)

// TestHelperProcess is not a test: it is the child process of
// TestCrashRecovery. It runs the accounts projector on the database named
// by the environment, printing "ready" once it starts, until it is killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	db, err := testdb.Open(testdb.Kind(os.Getenv(envKind)), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	s := fixture.NewStore(t, db)
	p := fixture.AccountsProjector(t, s, "accounts", "accounts", fixture.AccountsOptions{Processing: processing.Options{BatchSize: 100, ErrorHandler: processing.NoRetry{}}})
	fmt.Println("ready")
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// startHelper starts the helper process and waits until it is ready.
func startHelper(t *testing.T, db testdb.DB) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envHelper+"=1", envKind+"="+string(db.Kind), envDSN+"="+db.DSN)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "ready" {
			go func() { // drain the rest
				for sc.Scan() {
				}
			}()
			return cmd
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("helper process ended before it was ready: %v", sc.Err())
	return nil
}

// TestCrashRecovery kills a projector process with SIGKILL at random
// moments, five times, restarting it each time (with new events appended
// in between); the table it leaves must equal a clean rebuild.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := fixture.NewStore(t, db.Gorm)
		fixture.Fill(t, s, 15_000, 40, 1000)
		fixture.AccountsProjector(t, s, "accounts", "accounts", fixture.AccountsOptions{Processing: processing.Options{}}) // migrate before the children
		for i := range 5 {
			cmd := startHelper(t, db)
			time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			var pos int64
			if err := db.Gorm.Raw(`SELECT position FROM cairn_processor_positions WHERE name = 'accounts'`).Row().Scan(&pos); err != nil {
				t.Fatal(err)
			}
			head, _ := s.Head(t.Context())
			t.Logf("kill %d: position %d of %d", i+1, pos, head)
			fixture.Fill(t, s, 500, 45, 100)
		}
		// Finish in this process, then rebuild from scratch and compare.
		head, err := s.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p := fixture.AccountsProjector(t, s, "accounts", "accounts", fixture.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		fixture.RunInBackground(t, p)
		fixture.WaitFor(t, p, head)
		clean := fixture.AccountsProjector(t, s, "accounts-clean", "accounts_clean", fixture.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		fixture.RunInBackground(t, clean)
		fixture.WaitFor(t, clean, head)
		want := fixture.ReadAccounts(t, db.Gorm, "accounts_clean")
		checkAccounts(t, db.Gorm, "accounts", want)
		checkAccounts(t, db.Gorm, "accounts_clean", fixture.FoldAccounts(t, s, 0))
	})
}
