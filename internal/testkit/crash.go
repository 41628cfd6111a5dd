package testkit

import (
	"context"
	"math/rand/v2"
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
	// Processor is the name of the processor the child runs, on a store
	// with the default table prefix: its saved position is logged after
	// each kill.
	Processor string
	// Kills is how many times a child is started and killed.
	Kills int
	// MaxPause bounds the random time each child runs before it is
	// killed.
	MaxPause time.Duration
	// AfterKill, if set, is called after each kill, before the next child
	// starts: to append more events, say.
	AfterKill func()
}

// KillRepeatedly is the parent's side of a processor crash test. o.Kills
// times, it starts the test binary's TestHelperProcess as a child process
// and waits until it is ready, lets it run for a random time of up to
// o.MaxPause, kills it with SIGKILL and waits for it, logs the position
// saved for o.Processor and the head of s (failing t if the processor has
// no saved position), and calls o.AfterKill. The child's standard error
// goes to this process's.
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
	for i := range o.Kills {
		c := StartChild(t, ChildOptions{
			Run:    "^TestHelperProcess$",
			Env:    []string{envCrashKind + "=" + o.Kind, envCrashDSN + "=" + o.DSN},
			Stderr: os.Stderr,
		})
		time.Sleep(time.Duration(rand.Int64N(int64(o.MaxPause))))
		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		var pos int64
		if err := s.DB().Raw(`SELECT position FROM cairn_processor_positions WHERE name = ?`, o.Processor).Row().Scan(&pos); err != nil {
			t.Fatalf("position of %s after kill %d: %v", o.Processor, i+1, err)
		}
		t.Logf("kill %d: position %d of %d", i+1, pos, Head(t, s))
		if o.AfterKill != nil {
			o.AfterKill()
		}
	}
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
