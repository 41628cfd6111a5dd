package testkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/eventstore"
)

// Environment of the child of [KillRepeatedly]: the database it opens.
const (
	envCrashKind = "CAIRN_TESTKIT_CRASH_KIND"
	envCrashDSN  = "CAIRN_TESTKIT_CRASH_DSN"
)

// CrashOptions configures [KillRepeatedly].
type CrashOptions struct {
	// Kind and DSN name the database the child opens in [CrashChild].
	Kind, DSN string
	// Helper is the -test.run pattern that selects the child's test;
	// empty means "^TestHelperProcess$".
	Helper string
	// Processor is the name of the processor the child runs on the
	// store: KillRepeatedly watches its saved position. The child's work
	// is the events up to the head of the store when it starts.
	Processor string
	// Kills is how many times a child is started and killed.
	Kills int
	// MaxPause bounds the random time each child runs, once it has
	// done part of its work, before it is killed.
	MaxPause time.Duration
	// AfterKill, if set, is called after each kill, before the next child
	// starts: to check what the child left behind, or to append more
	// events.
	AfterKill func(Kill)
}

// Kill is what [KillRepeatedly] knows after it killed a child.
type Kill struct {
	// N counts the kills from 1.
	N int
	// Start is the processor's saved position when the child started,
	// Position its saved position after the kill and Head the store's
	// head after the kill.
	Start, Position, Head int64
}

// workTimeout bounds the time a child of KillRepeatedly may take to do
// part of its work.
const workTimeout = 2 * time.Minute

// KillRepeatedly is the parent's side of a processor crash test. o.Kills
// times, it starts the test binary's TestHelperProcess as a child process
// and waits until it is ready and has done part of its work: until the
// saved position of o.Processor has reached a random target in the first
// quarter of the way from where it was to the head of s. Then it lets the
// child run for a random time of up to o.MaxPause, kills it with SIGKILL
// and waits for it, logs the saved position and the head, and calls
// o.AfterKill. Waiting for the work, not for a time, makes every kill land
// while the child works however long it takes to start (a cold PostgreSQL
// connection, the race detector) and however fast it then goes; the
// caller keeps o.MaxPause short next to the work left (a quarter of it
// was done at most), and checks in AfterKill that work was left. The
// child's standard error goes to this process's.
//
// The child's side, in the same test binary:
//
//	func TestHelperProcess(t *testing.T) {
//		db := testkit.CrashChild(t, "TestCrashRecovery", testdb.Open)
//		p := … // set up the processor on db
//		testkit.RunChild(t, p)
//	}
func KillRepeatedly(t testing.TB, s *eventstore.Store, o CrashOptions) {
	t.Helper()
	// Create the processor's row, so that reading its position is a
	// read: a write would wait for the child's writes to SQLite.
	if _, _, err := s.LoadPosition(t.Context(), o.Processor); err != nil {
		t.Fatalf("position of %s: %v", o.Processor, err)
	}
	position := func(when string) int64 {
		t.Helper()
		_, pos, err := s.LeaseHolder(t.Context(), o.Processor)
		if err != nil {
			t.Fatalf("position of %s %s: %v", o.Processor, when, err)
		}
		return pos
	}
	for i := range o.Kills {
		start, head := position("before a child starts"), Head(t, s)
		if head <= start {
			t.Fatalf("kill %d: no work for the child: position %d, head %d", i+1, start, head)
		}
		helper := o.Helper
		if helper == "" {
			helper = "^TestHelperProcess$"
		}
		app := fmt.Sprintf("cairn-crash-child-%d-%d", os.Getpid(), rand.Int64())
		c := StartChild(t, ChildOptions{
			Run:    helper,
			Env:    []string{envCrashKind + "=" + o.Kind, envCrashDSN + "=" + childDSN(o.Kind, o.DSN, app)},
			Stderr: os.Stderr,
		})
		target := start + 1 + rand.Int64N(max(1, (head-start)/4))
		began := time.Now()
		deadline := began.Add(workTimeout)
		reached := start
		for pos := start; pos < target; pos = position("while a child works") {
			select {
			case <-c.Done():
				t.Fatalf("child %d ended before it reached position %d: %v", i+1, target, c.Wait())
			case <-time.After(2 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("child %d did not reach position %d within %v: position %d", i+1, target, workTimeout, pos)
			}
			reached = pos
		}
		// Pause at most MaxPause, and at most half the time the rest of
		// the work takes at the pace the child went so far, so that the
		// kill comes mid-work on a fast machine too.
		pause := o.MaxPause
		if done := max(reached, target) - start; done > 0 {
			rest := time.Duration(float64(time.Since(began)) * float64(head-max(reached, target)) / float64(done))
			pause = min(pause, rest/2)
		}
		if pause > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(pause))))
		}
		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		if o.Kind == "postgres" {
			// The server finishes what the child sent before it died (a
			// COMMIT in flight commits): read the position only once the
			// child's backends are gone.
			waitBackendsGone(t, s, app)
		}
		k := Kill{N: i + 1, Start: start, Position: position("after a kill"), Head: Head(t, s)}
		t.Logf("kill %d: position %d (from %d) of %d", k.N, k.Position, k.Start, k.Head)
		if o.AfterKill != nil {
			o.AfterKill(k)
		}
	}
}

// CrashEnv returns the environment that makes [CrashChild] open the
// database of the given kind at dsn: for a crash test that starts its
// children itself with [StartChild] (to kill one at a moment it chooses).
func CrashEnv(kind, dsn string) []string {
	return []string{envCrashKind + "=" + kind, envCrashDSN + "=" + dsn}
}

// CrashChild is the child's side of [KillRepeatedly], called first in
// TestHelperProcess: it opens the database the parent named with open
// (internal/testdb's Open), failing t if that fails, and returns it. When
// no KillRepeatedly started this process, it skips t instead (parent
// names the test that does, for the skip message).
func CrashChild[K ~string](t testing.TB, parent string, open func(kind K, dsn string) (*gorm.DB, error)) *gorm.DB {
	t.Helper()
	kind := os.Getenv(envCrashKind)
	if kind == "" {
		t.Skipf("child process of %s", parent)
	}
	db, err := open(K(kind), os.Getenv(envCrashDSN))
	if err != nil {
		t.Fatalf("open the %s database: %v", kind, err)
	}
	return db
}

// RunChild is how the child of [KillRepeatedly] ends: it calls
// [ChildReady] and runs r (a processor) until the parent kills this
// process, failing t if Run returns an error.
func RunChild(t testing.TB, r interface{ Run(context.Context) error }) {
	t.Helper()
	ChildReady()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// childDSN returns dsn with app as its application name on PostgreSQL, so
// that the child's connections can be told from the others.
func childDSN(kind, dsn, app string) string {
	if kind != "postgres" {
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("application_name", app)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " application_name=" + app
}

// waitBackendsGone waits until no PostgreSQL backend serves a connection
// named app, failing t after a minute.
func waitBackendsGone(t testing.TB, s *eventstore.Store, app string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int64
		if err := s.DB().WithContext(t.Context()).Raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", app).Scan(&n).Error; err != nil {
			t.Fatalf("backends of the killed child: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends of the killed child still there after a minute", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
