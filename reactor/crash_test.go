package reactor_test

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
	envHelper = "CAIRN_REACTOR_HELPER"
	envKind   = "CAIRN_REACTOR_KIND"
	envDSN    = "CAIRN_REACTOR_DSN"
)

// TestHelperProcess is not a test: it is the child process of
// TestCrashRecovery. It runs the receipt reactor on the database named by
// the environment, printing "ready" once it starts, until it is killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	db, err := testdb.Open(testdb.Kind(os.Getenv(envKind)), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	s := fixture.NewStore(t, db)
	r := receiptReactor(t, s, "receipts", processing.Options{BatchSize: 50, ErrorHandler: processing.NoRetry{}}, nil)
	fmt.Println("ready")
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

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

// TestCrashRecovery kills a reactor process with SIGKILL at random
// moments, five times, restarting it each time (with new events appended
// in between); in the end every deposit has exactly one receipt.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := fixture.NewStore(t, db.Gorm)
		fixture.Fill(t, s, 2_000, 20, 100)
		receiptReactor(t, s, "receipts", processing.Options{}, nil) // migrate before the children
		for i := range 5 {
			cmd := startHelper(t, db)
			time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			var pos int64
			if err := db.Gorm.Raw(`SELECT position FROM cairn_processor_positions WHERE name = 'receipts'`).Row().Scan(&pos); err != nil {
				t.Fatal(err)
			}
			t.Logf("kill %d: position %d of %d", i+1, pos, fixture.Head(t, s))
			fixture.Fill(t, s, 100, 5, 10)
		}
		// Finish in this process, and check the receipts.
		r := receiptReactor(t, s, "receipts", processing.Options{ErrorHandler: processing.NoRetry{}}, nil)
		fixture.RunInBackground(t, r)
		for {
			h := fixture.Head(t, s)
			fixture.WaitFor(t, r, h)
			if fixture.Head(t, s) == h { // the reactor's own receipts are appended behind it
				break
			}
		}
		checkReceipts(t, s)
	})
}
