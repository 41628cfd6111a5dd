package runner_test

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// Environment of the helper process (see TestHelperProcess).
const (
	envHelper = "CAIRN_RUNNER_HELPER"
	envKind   = "CAIRN_RUNNER_KIND"
	envDSN    = "CAIRN_RUNNER_DSN"
	envOwner  = "CAIRN_RUNNER_OWNER"
	envLease  = "CAIRN_RUNNER_LEASE"       // lease duration
	envDelay  = "CAIRN_RUNNER_BATCH_DELAY" // per batch
	envGrace  = "CAIRN_RUNNER_GRACE"
)

// TestHelperProcess is not a test: it is the runner process of the tests
// below. It runs the accounts projector (batches of 100, each recorded in
// accounts_applied with the owner's ID) under a runner configured by the
// environment, telling the parent once it starts, until SIGTERM or SIGKILL.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) == "" {
		t.Skip("child process of the runner's process tests")
	}
	duration := func(env string) time.Duration {
		d, err := time.ParseDuration(os.Getenv(env))
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		return d
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := testdb.Open(testdb.Kind(os.Getenv(envKind)), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	s := testkit.MigratedStore(t, db, testkit.NewRegistry(), eventstore.Options{Logger: log, PollInterval: 50 * time.Millisecond})
	owner := os.Getenv(envOwner)
	lease := duration(envLease)
	p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
		Processing: processing.Options{BatchSize: 100, Logger: log, ErrorHandler: processing.ConstantRetry{Delay: 50 * time.Millisecond}},
		Owner:      owner,
		BatchDelay: duration(envDelay),
	})
	r, err := runner.New(s, runner.Options{
		Logger:           log,
		Ownership:        processing.Ownership{Owner: owner, LeaseDuration: lease, HeartbeatInterval: lease / 4},
		GracePeriod:      duration(envGrace),
		ProgressInterval: time.Second,
	}, p)
	if err != nil {
		t.Fatal(err)
	}
	testkit.ChildReady()
	if err := runner.RunMain(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// startChild starts a runner process with owner ID owner and waits until
// it is ready. The process is killed when the test ends; its log (its
// standard error) is in the test's output if the test fails, or if
// DEBUGLOG is set.
func startChild(t *testing.T, db testdb.DB, owner string, lease, batchDelay, grace time.Duration) *testkit.Child {
	t.Helper()
	dsn := db.DSN
	if db.Kind == testdb.Postgres {
		// A paused owner's open transaction must not hold its row locks
		// past its lease (see the package documentation).
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("idle_in_transaction_session_timeout", strconv.FormatInt(lease.Milliseconds(), 10))
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	var c *testkit.Child
	t.Cleanup(func() { // after StartChild's cleanup has killed it
		if c != nil && (t.Failed() || os.Getenv("DEBUGLOG") != "") {
			t.Logf("log of %s:\n%s", owner, c.Stderr())
		}
	})
	c = testkit.StartChild(t, testkit.ChildOptions{
		Run: "^TestHelperProcess$",
		Env: []string{envHelper + "=1", envKind + "=" + string(db.Kind), envDSN + "=" + dsn, envOwner + "=" + owner,
			envLease + "=" + lease.String(), envDelay + "=" + batchDelay.String(), envGrace + "=" + grace.String()},
	})
	return c
}

// appliedTwice returns the positions projected more than once.
func appliedTwice(t testing.TB, db testdb.DB) []int64 {
	t.Helper()
	var twice []int64
	if err := db.Gorm.Raw(`SELECT position FROM accounts_applied GROUP BY position HAVING count(*) > 1`).Scan(&twice).Error; err != nil {
		t.Fatal(err)
	}
	return twice
}

// maxAppliedBy returns the highest position owner projected.
func maxAppliedBy(t testing.TB, db testdb.DB, owner string) int64 {
	t.Helper()
	var m int64
	if err := db.Gorm.Raw(`SELECT coalesce(max(position), 0) FROM accounts_applied WHERE owner = ?`, owner).Row().Scan(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestShutdown stops a runner process with SIGTERM in the middle of its
// catch-up: it exits cleanly within the grace period, its lease released,
// and its saved position matches the committed projection.
func TestShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 10_000, 30, 500)
		testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{}) // migrate before the child
		const grace = 5 * time.Second
		c := startChild(t, db, "A", 2*time.Second, 10*time.Millisecond, grace)
		testkit.Eventually(t, 60*time.Second, "the child to project", func() bool { return readLease(t, db.Gorm, "accounts").Position > 0 })

		start := time.Now()
		if err := c.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := c.Wait()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%v; want a clean exit", err)
		}
		if took > grace {
			t.Errorf("child took %v to exit, longer than its grace period %v", took, grace)
		}
		l := readLease(t, db.Gorm, "accounts")
		t.Logf("stopped at position %d of %d after %v", l.Position, head, took)
		if l.Position >= head {
			t.Logf("the child finished before SIGTERM: the test did not stop it mid-catch-up")
		}
		if l.Owner != "" {
			t.Errorf("lease held by %q after shutdown, want released", l.Owner)
		}
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), testkit.FoldAccounts(t, s, l.Position))
		if m := maxAppliedBy(t, db, "A"); m > l.Position {
			t.Errorf("events projected up to %d, past the saved position %d", m, l.Position)
		}
		if !strings.Contains(c.Stderr(), "runner stopping") {
			t.Errorf("child did not log its shutdown:\n%s", c.Stderr())
		}
	})
}

// TestFailover runs two runner processes with the same projector and
// kills the owner with SIGKILL in the middle of its catch-up: the other
// takes over once the lease expires, finishes, and the projection equals
// a clean rebuild.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 10_000, 30, 500)
		testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{})
		const lease = time.Second
		a := startChild(t, db, "A", lease, 10*time.Millisecond, 5*time.Second)
		testkit.Eventually(t, 60*time.Second, "A to own and project", func() bool {
			l := readLease(t, db.Gorm, "accounts")
			return l.Owner == "A" && l.Position > 0
		})
		b := startChild(t, db, "B", lease, 10*time.Millisecond, 5*time.Second)
		if err := a.Kill(); err != nil {
			t.Fatal(err)
		}
		a.Wait()
		killedAt := readLease(t, db.Gorm, "accounts").Position
		t.Logf("A killed at position %d of %d", killedAt, head)

		testkit.Eventually(t, 30*time.Second, "B to take over", func() bool { return readLease(t, db.Gorm, "accounts").Owner == "B" })
		testkit.Eventually(t, 60*time.Second, "B to finish", func() bool { return readLease(t, db.Gorm, "accounts").Position == head })
		if twice := appliedTwice(t, db); len(twice) > 0 {
			t.Errorf("positions projected twice: %v", twice)
		}
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), rebuild(t, s, db.Gorm, head))
		if !strings.Contains(b.Stderr(), "lease taken") {
			t.Errorf("B did not log its takeover:\n%s", b.Stderr())
		}
	})
}

// TestFencing pauses the owner with SIGSTOP in the middle of its
// catch-up, lets the other process take over and advance, and resumes the
// first with SIGCONT: no batch of the paused owner commits after the
// takeover, it stands by, and the projection equals a clean rebuild.
//
// It runs on PostgreSQL only: a SQLite process paused inside its write
// transaction holds the database's one write lock, so no other process
// can take over until it resumes (which is safe, but not a takeover).
func TestFencing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	db := testdb.New(t, testdb.Postgres)
	s := testkit.DomainStore(t, db.Gorm)
	head := testkit.Fill(t, s, 10_000, 30, 500)
	testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{})
	const lease = time.Second
	a := startChild(t, db, "A", lease, 10*time.Millisecond, 5*time.Second)
	testkit.Eventually(t, 60*time.Second, "A to own and project", func() bool {
		l := readLease(t, db.Gorm, "accounts")
		return l.Owner == "A" && l.Position > 0
	})
	b := startChild(t, db, "B", lease, 10*time.Millisecond, 5*time.Second)
	if err := a.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			a.Signal(syscall.SIGCONT)
		}
	}()

	var takeover leaseRow
	testkit.Eventually(t, 30*time.Second, "B to take over", func() bool {
		takeover = readLease(t, db.Gorm, "accounts")
		return takeover.Owner == "B"
	})
	lastA := maxAppliedBy(t, db, "A")
	testkit.Eventually(t, 30*time.Second, "B to advance", func() bool { return maxAppliedBy(t, db, "B") > takeover.Position })
	t.Logf("A paused after position %d; B took over at %d (epoch %d)", lastA, takeover.Position, takeover.Epoch)

	if err := a.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	testkit.Eventually(t, 30*time.Second, "A to find its lease lost", func() bool { return strings.Contains(a.Stderr(), "lease lost") })
	testkit.Eventually(t, 60*time.Second, "B to finish", func() bool { return readLease(t, db.Gorm, "accounts").Position == head })

	if m := maxAppliedBy(t, db, "A"); m != lastA {
		t.Errorf("A committed up to %d after it resumed, want nothing past %d", m, lastA)
	}
	if lastA > takeover.Position {
		t.Errorf("A committed up to %d, past the position %d B took over at", lastA, takeover.Position)
	}
	if twice := appliedTwice(t, db); len(twice) > 0 {
		t.Errorf("positions projected twice: %v", twice)
	}
	if l := readLease(t, db.Gorm, "accounts"); l.Owner != "B" {
		t.Errorf("lease held by %q at the end, want B", l.Owner)
	}
	testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), rebuild(t, s, db.Gorm, head))
	_ = b
}
