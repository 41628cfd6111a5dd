package reactor_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// concurrentCrashOptions are the options of the reactor of
// TestConcurrencyCrashRecovery.
func concurrentCrashOptions() processing.Options {
	// Each event takes 2ms more, as a side effect would: the work of a
	// child lasts long enough to be killed in the middle of it.
	slow := func(_ *processing.Processor, next processing.EventFunc) processing.EventFunc {
		return func(ctx context.Context, e event.Event) error {
			time.Sleep(2 * time.Millisecond)
			return next(ctx, e)
		}
	}
	return processing.Options{Concurrency: 32, BatchSize: 200, ErrorHandler: processing.NoRetry{}, Middleware: []processing.Middleware{slow}}
}

// TestConcurrentHelperProcess is not a test: it is the child process of
// TestConcurrencyCrashRecovery. It runs a receipt reactor with Concurrency
// 32 on the database named by the environment, telling the parent once it
// starts, until it is killed.
func TestConcurrentHelperProcess(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestConcurrencyCrashRecovery", testdb.Open))
	testkit.RunChild(t, concurrentReactor(t, s, "receipts", concurrentCrashOptions(), newOrderLog(), nil))
}

// TestConcurrencyCrashRecovery kills a reactor with Concurrency 32 with
// SIGKILL at random moments while it works, five times, restarting it
// each time (with new events appended in between). After every kill, every
// deposit up to the saved position has its receipt (the position never
// passed an event not handled) and none has two; at least one kill leaves
// receipts past the saved position (handled ahead of it, handled again by
// the next child). In the end every deposit has exactly one receipt.
func TestConcurrencyCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 3_000, 200, 5)
		concurrentReactor(t, s, "receipts", concurrentCrashOptions(), newOrderLog(), nil) // migrate before the children
		partway, late := 0, 0
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Processor: "receipts", Kills: 5, MaxPause: 20 * time.Millisecond,
			Helper: "^TestConcurrentHelperProcess$",
			AfterKill: func(k testkit.Kill) {
				c := receiptsAt(t, s, k.Position)
				t.Logf("kill %d: %d receipts emitted past the saved position", k.N, c.ahead)
				if c.skipped > 0 || c.twice > 0 {
					t.Errorf("kill %d: %d deposits up to the saved position %d without a receipt, %d with two or more", k.N, c.skipped, k.Position, c.twice)
				}
				if k.Position >= k.Head {
					// The saved position moves in steps (a batch, or a
					// second): on a fast machine a child can finish
					// between two looks at it. One such kill is
					// tolerated; the others must come mid-work.
					late++
					t.Logf("kill %d came after the reactor had handled every event", k.N)
				}
				if c.ahead > 0 {
					partway++
				}
				testkit.Fill(t, s, 3_000, 100, 2) // at Concurrency 32 and 2 ms an event, ~0.1 s of work for the next child
			},
		})
		if partway == 0 {
			t.Errorf("no kill left receipts past the saved position")
		}
		if late > 1 {
			t.Errorf("%d of 5 kills came after the reactor had handled every event: they did not kill it mid-work", late)
		}
		runToHead(t, s, concurrentReactor(t, s, "receipts", concurrentCrashOptions(), newOrderLog(), nil))
		checkReceipts(t, s)
	})
}
