package projector_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// TestHelperProcess is not a test: it is the child process of
// TestCrashRecovery. It runs the accounts projector on the database named
// by the environment, telling the parent once it starts, until it is killed.
func TestHelperProcess(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestCrashRecovery", testdb.Open))
	testkit.RunChild(t, testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{BatchSize: 100, ErrorHandler: processing.NoRetry{}}}))
}

// swappingLine is what TestHelperSwap prints inside the swap's
// transaction.
const swappingLine = "child: swapping"

// TestHelperVersioned is not a test: it is the child process of
// TestCrashDuringRebuild. It runs version 1 of the accounts projector —
// its follower and its builder — under leases with a fixed owner (a
// restarted child takes them back at once), until it is killed.
func TestHelperVersioned(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestCrashDuringRebuild", testdb.Open))
	runVersionedChild(t, s, false)
}

// TestHelperSwap is not a test: it is the child process of
// TestCrashDuringSwap. It runs as TestHelperVersioned does, and once it
// swaps, it says so inside the swap's transaction and waits there.
func TestHelperSwap(t *testing.T) {
	s := testkit.DomainStore(t, testkit.CrashChild(t, "TestCrashDuringSwap", testdb.Open))
	runVersionedChild(t, s, true)
}

func runVersionedChild(t *testing.T, s *eventstore.Store, waitInSwap bool) {
	opts := versionedOptions(1)
	opts.Processing.BatchSize = 100
	p := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
	if waitInSwap {
		projector.SetSwapHook(p, func() {
			fmt.Println(swappingLine)
			time.Sleep(time.Minute)
		})
	}
	testkit.RunChild(t, ownedRun{p, processing.Ownership{Owner: "crash-child", LeaseDuration: 2 * time.Second}})
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

// followerOnly runs only the processor that follows a versioned
// projector's active version (never its builder): the process that serves
// while a child builds.
type followerOnly struct{ p *projector.Projector }

func (f followerOnly) Run(ctx context.Context) error {
	return f.p.Processor.RunOwned(ctx, processing.Ownership{Owner: "parent-follower", LeaseDuration: 2 * time.Second})
}

// TestCrashDuringRebuild kills the process that builds a new version with
// SIGKILL at random moments, four times, while this process serves and
// follows the active version and queries it in a loop: each child resumes
// the build from the position the killed one saved (taking its lease back
// at once under the same owner). This process then finishes the build
// and swaps it in, once; every query answered the fold of the events up
// to its position.
func TestCrashDuringRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 15_000, 40, 1000)
		opts := versionedOptions(1)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		stopFollower := testkit.RunInBackground(t, followerOnly{p})
		testkit.WaitFor(t, p, head(t, s))
		reader := startViewReader(t, db.Gorm, "accounts", "accounts")
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		var positions []int64
		testkit.KillRepeatedly(t, s, testkit.CrashOptions{
			Kind: string(kind), DSN: db.DSN, Processor: "accounts@v1r1", Kills: 4, MaxPause: 20 * time.Millisecond,
			Helper: "^TestHelperVersioned$",
			AfterKill: func(k testkit.Kill) {
				if k.Position >= k.Head {
					t.Errorf("kill %d came after the build had caught up (position %d, head %d)", k.N, k.Position, k.Head)
				}
				if k.N > 1 && k.Start < positions[len(positions)-1] {
					t.Errorf("kill %d: the child started from %d, before the %d saved by the killed one", k.N, k.Start, positions[len(positions)-1])
				}
				positions = append(positions, k.Position)
				testkit.Fill(t, s, 2000, 45, 100)
			},
		})
		vs, err := p.Versions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if vs.Active.Label != "v1" || vs.Build == nil || vs.Build.Label != "v1r1" || vs.Build.Position != positions[len(positions)-1] {
			t.Fatalf("Versions() after the kills = %+v, want v1 active and v1r1 building at %d", vs, positions[len(positions)-1])
		}
		// Finish here: the follower and the builder, under this process's
		// owner (the dead child's lease expires first).
		if err := stopFollower(); err != nil {
			t.Fatal(err)
		}
		runOwned(t, p, "parent")
		waitActive(t, p, "v1r1")
		testkit.WaitFor(t, p, head(t, s))
		reader.finish(t, s)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
		all, err := s.ProjectionVersions(t.Context(), "accounts")
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(all); !slices.Equal(got, []string{"v1:retired", "v1r1:active"}) {
			t.Errorf("versions = %v, want one swap: v1 retired, v1r1 active", got)
		}
	})
}

// TestCrashDuringSwap kills the process that swaps a new version in while
// it is inside the swap's transaction, its changes made but not
// committed: nothing of the swap is left (the old version still active
// and serving, its follower going on), and the next process swaps once.
// The queries never fail.
func TestCrashDuringSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 5000, 40, 1000)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", versionedOptions(1))
		stopFollower := testkit.RunInBackground(t, followerOnly{p})
		testkit.WaitFor(t, p, head(t, s))
		reader := startViewReader(t, db.Gorm, "accounts", "accounts")
		stopWriting := trickle(t, s)
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		swapping := make(chan struct{})
		c := testkit.StartChild(t, testkit.ChildOptions{
			Run:    "^TestHelperSwap$",
			Env:    testkit.CrashEnv(string(kind), db.DSN),
			Stderr: os.Stderr,
			OnLine: func(c *testkit.Child, line string) {
				if strings.Contains(line, swappingLine) {
					c.Kill()
					close(swapping)
				}
			},
		})
		select {
		case <-swapping:
		case <-c.Done():
			t.Fatalf("the child ended before it swapped: %v", c.Wait())
		case <-time.After(2 * time.Minute):
			t.Fatal("the child did not swap within 2 minutes")
		}
		if !c.Killed() {
			t.Fatalf("the child was not killed: %v", c.Wait())
		}
		// Nothing of the swap is left; the old version serves and
		// follows.
		vs, err := p.Versions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if vs.Active.Label != "v1" || vs.Build == nil || vs.Build.Label != "v1r1" || vs.Build.Position == 0 {
			t.Fatalf("Versions() after the kill = %+v, want v1 active and v1r1 built in part", vs)
		}
		testkit.WaitFor(t, p, head(t, s))

		if err := stopFollower(); err != nil {
			t.Fatal(err)
		}
		runOwned(t, p, "parent")
		waitActive(t, p, "v1r1")
		stopWriting()
		testkit.WaitFor(t, p, head(t, s))
		reader.finish(t, s)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
		all, err := s.ProjectionVersions(t.Context(), "accounts")
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(all); !slices.Equal(got, []string{"v1:retired", "v1r1:active"}) {
			t.Errorf("versions = %v, want one swap: v1 retired, v1r1 active", got)
		}
	})
}
