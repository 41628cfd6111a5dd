package runner_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
	"github.com/cairnhq/cairn/runner"
)

// envPartitions marks the helper process of TestPartitionFailover.
const envPartitions = "CAIRN_RUNNER_PARTITIONS_HELPER"

// partitions is the number of partitions of the processors of
// TestPartitionFailover.
const partitions = 6

// partitionedProcessors returns the processors of TestPartitionFailover:
// the accounts projector (recording the owner of each event it projects)
// and a reactor that emits a receipt for each deposit, both split into
// partitions.
func partitionedProcessors(t testing.TB, s *eventstore.Store, owner string, log *slog.Logger) (*processing.Processor, *reactor.Reactor) {
	t.Helper()
	p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
		Processing: processing.Options{Partitions: partitions, BatchSize: 50, Logger: log, ErrorHandler: processing.ConstantRetry{Delay: 50 * time.Millisecond}},
		Owner:      owner,
		BatchDelay: 10 * time.Millisecond,
	})
	r, err := reactor.New(s, "receipts", reactor.Options{Processing: processing.Options{Partitions: partitions, BatchSize: 50, Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		_, err := emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued(d))
		return err
	})
	if err := r.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return p.Processor, r
}

// TestPartitionHelperProcess is not a test: it is a runner process of
// TestPartitionFailover.
func TestPartitionHelperProcess(t *testing.T) {
	if os.Getenv(envPartitions) == "" {
		t.Skip("child process of the runner's partition tests")
	}
	lease, err := time.ParseDuration(os.Getenv(envLease))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := testdb.Open(testdb.Kind(os.Getenv(envKind)), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	s := testkit.MigratedStore(t, db, testkit.NewRegistry(), eventstore.Options{Logger: log, PollInterval: 50 * time.Millisecond})
	owner := os.Getenv(envOwner)
	p, rc := partitionedProcessors(t, s, owner, log)
	r, err := runner.New(s, runner.Options{
		Logger:    log,
		Ownership: processing.Ownership{Owner: owner, LeaseDuration: lease, HeartbeatInterval: lease / 4},
	}, p, rc)
	if err != nil {
		t.Fatal(err)
	}
	testkit.ChildReady()
	if err := runner.RunMain(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// partitionOwners returns the owner of each partition row of name (the
// owner column as it is: a dead owner's stays until another takes over).
func partitionOwners(t testing.TB, s *eventstore.Store, name string) (owners map[string]string, minPos int64) {
	t.Helper()
	rows, err := s.ListPositions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	owners = map[string]string{}
	minPos = -1
	for _, r := range rows {
		if strings.HasPrefix(r.Name, name+"#") {
			owners[r.Name] = r.Owner
			if minPos < 0 || r.Position < minPos {
				minPos = r.Position
			}
		}
	}
	return owners, minPos
}

func count(owners map[string]string, owner string) int {
	n := 0
	for _, o := range owners {
		if o == owner {
			n++
		}
	}
	return n
}

// TestPartitionFailover runs three runner processes sharing a partitioned
// projector and a partitioned reactor, and kills one with SIGKILL in the
// middle of the catch-up: its partitions move to the other two within
// about a lease and a poll, every event is projected exactly once (the
// projection equals a rebuild) and handled by the reactor at least once,
// and each receipt is stored once.
func TestPartitionFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 6000, 60, 10)
		partitionedProcessors(t, s, "", testdb.Logger(t)) // migrate before the children
		const lease = time.Second
		start := func(owner string) *testkit.Child {
			return testkit.StartChild(t, testkit.ChildOptions{
				Run: "^TestPartitionHelperProcess$",
				Env: []string{envPartitions + "=1", envKind + "=" + string(db.Kind), envDSN + "=" + db.DSN, envOwner + "=" + owner,
					envLease + "=" + lease.String()},
			})
		}
		children := map[string]*testkit.Child{}
		for _, o := range []string{"A", "B", "C"} {
			children[o] = start(o)
		}
		t.Cleanup(func() {
			if t.Failed() || os.Getenv("DEBUGLOG") != "" {
				for o, c := range children {
					t.Logf("log of %s:\n%s", o, c.Stderr())
				}
			}
		})
		testkit.Eventually(t, time.Minute, "two partitions of each processor for each process", func() bool {
			for _, name := range []string{"accounts", "receipts"} {
				owners, _ := partitionOwners(t, s, name)
				if count(owners, "A") != 2 || count(owners, "B") != 2 || count(owners, "C") != 2 {
					return false
				}
			}
			return true
		})
		if err := children["B"].Kill(); err != nil {
			t.Fatal(err)
		}
		children["B"].Wait()
		killed := time.Now()
		_, at := partitionOwners(t, s, "accounts")
		t.Logf("B killed with the accounts partitions at %d of %d at least", at, head)
		testkit.Eventually(t, time.Minute, "B's partitions taken by A and C", func() bool {
			for _, name := range []string{"accounts", "receipts"} {
				owners, _ := partitionOwners(t, s, name)
				if count(owners, "A") != 3 || count(owners, "C") != 3 {
					return false
				}
			}
			return true
		})
		t.Logf("B's partitions moved in %v (lease %v)", time.Since(killed).Round(10*time.Millisecond), lease)

		testkit.Eventually(t, 5*time.Minute, "every partition at the head", func() bool {
			_, a := partitionOwners(t, s, "accounts")
			_, r := partitionOwners(t, s, "receipts")
			return a >= head && r >= head
		})
		for _, o := range []string{"A", "C"} {
			if err := children[o].Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := children[o].Wait(); err != nil {
				t.Errorf("%s: %v; want a clean exit", o, err)
			}
		}
		if twice := appliedTwice(t, db); len(twice) > 0 {
			t.Errorf("positions projected twice: %v", twice)
		}
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), rebuild(t, s, db.Gorm, head))

		// Every deposit has exactly one receipt, caused by it.
		deposits := map[string]bool{}
		receipts := map[string]int{}
		for e, err := range s.ReadAll(t.Context(), 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			switch e.Data.(type) {
			case testkit.Deposited:
				if e.Position <= head {
					deposits[e.ID.String()] = true
				}
			case testkit.ReceiptIssued:
				receipts[e.CausationID]++
			}
		}
		for id := range deposits {
			if receipts[id] != 1 {
				t.Errorf("deposit %s has %d receipts, want 1", id, receipts[id])
			}
		}
		if len(receipts) != len(deposits) {
			t.Errorf("%d deposits have receipts, want %d", len(receipts), len(deposits))
		}
	})
}

// TestPartitionStatus: a runner's status, and its JSON, show every
// partition of a partitioned processor, with its owner, position and lag.
func TestPartitionStatus(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 300, 12, 10)
		p, rc := partitionedProcessors(t, s, "", testdb.Logger(t))
		r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t), Ownership: processing.Ownership{LeaseDuration: 3 * time.Second}}, p, rc)
		if err != nil {
			t.Fatal(err)
		}
		testkit.RunInBackground(t, r)
		// The reactor's receipts move the head: wait until both
		// processors are at a head that no longer moves.
		for h := head; ; {
			testkit.WaitFor(t, rc, h)
			testkit.WaitFor(t, p, h)
			next := testkit.Head(t, s)
			if next == h {
				break
			}
			h = next
		}
		testkit.Eventually(t, time.Minute, "every partition live", func() bool {
			ps := processorStatus(t, r.Status(t.Context()), "accounts")
			for _, part := range ps.Partitions {
				if part.State != runner.Live {
					return false
				}
			}
			return len(ps.Partitions) == partitions
		})
		ps := processorStatus(t, r.Status(t.Context()), "accounts")
		if ps.Position != ps.Head || ps.State != runner.Live {
			t.Errorf("accounts: %+v, want live at the head", ps)
		}
		for j, part := range ps.Partitions {
			if part.Index != j || part.Name != processing.PartitionName("accounts", j, partitions) || part.Owner != r.Owner() || part.Position != ps.Head || part.Lag != 0 {
				t.Errorf("partition %d: %+v, want %s owned by %s at %d", j, part, processing.PartitionName("accounts", j, partitions), r.Owner(), ps.Head)
			}
		}
		body, err := json.Marshal(r.Status(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"partitions":[{"index":0,"name":"accounts#0/6"`) {
			t.Errorf("JSON status lacks the partitions:\n%s", body)
		}
	})
}
