package projector_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// crashPoison is the poison of the parking crash tests, the same in the
// parent and its children: the stream and the first version that fails.
var crashPoison = map[string]int64{"acct-4": 40, "acct-9": 120, "acct-17": 1}

// TestParkHelperProcess is not a test: it is the child process of
// TestParkCrashRecovery. It runs a parking accounts projector poisoned
// with crashPoison on the database named by the environment until it is
// killed.
func TestParkHelperProcess(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestParkCrashRecovery", testdb.Open))
	testkit.RunChild(t, testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
		Processing: processing.Options{Park: true, BatchSize: 100, ErrorHandler: processing.NoRetry{}},
		Fail:       newPoison(maps.Clone(crashPoison)).fail,
	}))
}

// TestParkCrashRecovery kills a parking projector's process with SIGKILL
// at random moments while it works through batches that park events, five
// times (appending events in between, of the poisoned streams too). After
// each kill, the parked events are exactly those of the poisoned streams
// up to the saved position, and the table is the fold of the other
// events: nothing was parked twice or lost. Once the handler is fixed, a
// retry of every parked stream makes the table equal a rebuild from
// scratch.
func TestParkCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 12_000, 30, 20)
		testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Park: true}}) // migrate before the children
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Helper: "^TestParkHelperProcess$", Processor: "accounts", Kills: 5, MaxPause: 20 * time.Millisecond,
			AfterKill: func(k testkit.Kill) {
				if k.Position >= k.Head {
					t.Errorf("kill %d came after the projector had caught up (position %d, head %d): it did not kill it mid-work", k.N, k.Position, k.Head)
				}
				checkParkedState(t, s, db.Gorm, "accounts", "accounts", k.Position, expectParked(t, s, k.Position, crashPoison), nil)
				testkit.Fill(t, s, 1000, 30, 20)
			},
		})
		// Finish in this process, still poisoned.
		head := testkit.Head(t, s)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{Park: true, ErrorHandler: processing.NoRetry{}},
			Fail:       newPoison(maps.Clone(crashPoison)).fail,
		})
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", head, expectParked(t, s, head, crashPoison), nil)

		// The fix, and a retry of every parked stream.
		fixed := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Park: true}})
		streams, err := s.ParkedStreams(t.Context(), "accounts")
		if err != nil || len(streams) != len(crashPoison) {
			t.Fatalf("ParkedStreams = %+v, %v; want %d streams", streams, err, len(crashPoison))
		}
		for _, ps := range streams {
			if n, err := fixed.RetryParked(t.Context(), ps.StreamID); err != nil || n != ps.Count {
				t.Errorf("RetryParked(%s) = %d, %v; want %d, nil", ps.StreamID, n, err, ps.Count)
			}
		}
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", head, nil, nil)
		clean := testkit.AccountsProjector(t, s, "accounts-clean", "accounts_clean", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, clean)
		testkit.WaitFor(t, clean, head)
		checkAccounts(t, db.Gorm, "accounts", testkit.ReadAccounts(t, db.Gorm, "accounts_clean"))
	})
}

// Environment of TestParkRetryHelperProcess: the database and the stream
// to retry.
const (
	envRetryKind   = "CAIRN_PROJECTOR_RETRY_KIND"
	envRetryDSN    = "CAIRN_PROJECTOR_RETRY_DSN"
	envRetryStream = "CAIRN_PROJECTOR_RETRY_STREAM"
)

// TestParkRetryHelperProcess is not a test: it is the child process of
// TestParkRetryCrash. It retries the parked events of a stream with the
// fixed accounts projector, saying "in transaction" when the retry's
// transaction has begun, which then takes a while.
func TestParkRetryHelperProcess(t *testing.T) {
	kind := os.Getenv(envRetryKind)
	if kind == "" {
		t.Skip("child process of TestParkRetryCrash")
	}
	db, err := testdb.Open(testdb.Kind(kind), os.Getenv(envRetryDSN))
	if err != nil {
		t.Fatal(err)
	}
	s := testkit.DomainStore(t, db)
	p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
		Processing: processing.Options{Park: true},
		OnBegin:    func() { fmt.Println("in transaction") },
		BatchDelay: 100 * time.Millisecond,
	})
	testkit.ChildReady()
	n, err := p.RetryParked(context.Background(), os.Getenv(envRetryStream))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("retried", n)
}

// TestParkRetryCrash kills, with SIGKILL, processes that retry a stream's
// parked events, at a random moment once the retry's transaction has
// begun (some finish first): the stream's events are then either all
// still parked and not applied, or all applied and no longer parked. Then
// the retries are finished here, and the table equals a rebuild from
// scratch.
func TestParkRetryCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		dsn := testdb.NewDSN(t, kind)
		db, err := testdb.Open(kind, dsn)
		if err != nil {
			t.Fatal(err)
		}
		testkit.CloseWhenDone(t, db)
		s := testkit.DomainStore(t, db)
		head := testkit.Fill(t, s, 4_000, 8, 20)
		poisoned := map[string]int64{"acct-0": 3, "acct-1": 3, "acct-2": 3, "acct-3": 3, "acct-4": 3}
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{Park: true, ErrorHandler: processing.NoRetry{}},
			Fail:       newPoison(maps.Clone(poisoned)).fail,
		})
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := expectParked(t, s, head, poisoned)
		checkParkedState(t, s, db, "accounts", "accounts", head, want, nil)

		stillParked := 0
		for i := range len(poisoned) {
			stream := fmt.Sprintf("acct-%d", i)
			ofStream := expectParked(t, s, head, map[string]int64{stream: poisoned[stream]})
			c := testkit.StartChild(t, testkit.ChildOptions{
				Run:    "^TestParkRetryHelperProcess$",
				Env:    []string{envRetryKind + "=" + string(kind), envRetryDSN + "=" + dsn, envRetryStream + "=" + stream},
				Stderr: os.Stderr,
				OnLine: func(c *testkit.Child, line string) {
					if line == "in transaction" {
						time.Sleep(time.Duration(rand.Int64N(int64(150 * time.Millisecond))))
						c.Kill()
					}
				},
			})
			killed := c.Killed()
			if err := c.Wait(); !killed && err != nil {
				t.Fatalf("retry child of %s: %v", stream, err)
			}
			left := 0
			for pos := range testkit.ParkedPositions(t, s, "accounts") {
				if ofStream[pos] {
					left++
				}
			}
			switch {
			case !killed && left != 0:
				t.Errorf("retry of %s done, but %d of its events are still parked", stream, left)
			case left == len(ofStream):
				stillParked++
			case left == 0:
				for pos := range ofStream {
					delete(want, pos)
				}
			default:
				t.Errorf("kill %d left %d of the %d parked events of %s", i+1, left, len(ofStream), stream)
			}
			t.Logf("kill %d (killed: %v): %d of %s's %d parked events left", i+1, killed, left, stream, len(ofStream))
			checkParkedState(t, s, db, "accounts", "accounts", head, want, nil)
		}
		if stillParked == 0 {
			t.Errorf("no kill came before the retry's commit")
		}

		fixed := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Park: true}})
		for i := range len(poisoned) {
			if _, err := fixed.RetryParked(t.Context(), fmt.Sprintf("acct-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		checkParkedState(t, s, db, "accounts", "accounts", head, nil, nil)
		clean := testkit.AccountsProjector(t, s, "accounts-clean", "accounts_clean", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, clean)
		testkit.WaitFor(t, clean, head)
		checkAccounts(t, db, "accounts", testkit.ReadAccounts(t, db, "accounts_clean"))
		checkAccounts(t, db, "accounts", testkit.FoldAccounts(t, s, 0))
	})
}
