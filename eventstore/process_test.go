package eventstore_test

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// Environment of the crash test's writer process (see TestHelperProcess).
const (
	envHelper  = "CAIRN_EVENTSTORE_HELPER" // set: this process is the writer
	envKind    = "CAIRN_EVENTSTORE_KIND"
	envDSN     = "CAIRN_EVENTSTORE_DSN"
	envPrefix  = "CAIRN_EVENTSTORE_PREFIX"
	envWriters = "CAIRN_EVENTSTORE_WRITERS"
)

// TestHelperProcess is not a test: it is the writer process of
// TestCrashKeepsAcknowledgedAppends. It opens the store named by the
// environment and, once released, appends events in threes with several
// writers until it is killed, printing each acknowledged append as a line
// "ack <stream> <first version> <id> <id> <id>".
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) == "" {
		t.Skip("child process of TestCrashKeepsAcknowledgedAppends")
	}
	writers, err := strconv.Atoi(os.Getenv(envWriters))
	if err != nil {
		t.Fatalf("%s: %v", envWriters, err)
	}
	db, err := testdb.Open(testdb.Kind(os.Getenv(envKind)), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CloseWhenDone(t, db)
	s := testkit.MigratedStore(t, db, testkit.NewRegistry(), eventstore.Options{TablePrefix: os.Getenv(envPrefix)})
	testkit.ChildReady()
	if err := testkit.AwaitRelease(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := 0; ; k++ {
				stream := fmt.Sprintf("crash-%d-%d", w, k%4)
				v := int64(3 * (k / 4))
				got, err := s.Append(t.Context(), stream, event.Exact(v),
					[]any{testkit.Tick{Writer: w, Seq: 3 * k}, testkit.Tick{Writer: w, Seq: 3*k + 1}, testkit.Tick{Writer: w, Seq: 3*k + 2}})
				if err != nil {
					t.Errorf("Append(%q, %v) = %v", stream, event.Exact(v), err)
					return
				}
				line := fmt.Sprintf("ack %s %d %s %s %s\n", stream, got[0].Version, got[0].ID, got[1].ID, got[2].ID)
				mu.Lock()
				os.Stdout.WriteString(line) // unbuffered: printed means acknowledged
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// A writer process killed (SIGKILL) in the middle of its appends: every
// append it had acknowledged is stored, and every stored append is whole.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		const prefix = "crash_"
		db := testdb.New(t, kind)
		s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TablePrefix: prefix})

		type ack struct {
			stream  string
			version int64
			ids     [3]string
		}
		var (
			mu   sync.Mutex
			acks []ack
			kill sync.Once
		)
		const killAfter = 150
		// On PostgreSQL the child's sessions are named, so that we can
		// wait for them to end: a transaction whose COMMIT was sent
		// before the kill may still commit (unacknowledged) afterwards.
		dsn := db.DSN
		appName := fmt.Sprintf("cairn_crash_%d", time.Now().UnixNano())
		if kind == testdb.Postgres {
			u, err := url.Parse(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("application_name", appName)
			u.RawQuery = q.Encode()
			dsn = u.String()
		}
		c := testkit.StartChild(t, testkit.ChildOptions{
			Run: "^TestHelperProcess$",
			Env: []string{envHelper + "=1", envKind + "=" + string(kind), envDSN + "=" + dsn, envPrefix + "=" + prefix, envWriters + "=4"},
			OnLine: func(c *testkit.Child, line string) {
				var a ack
				if _, err := fmt.Sscanf(line, "ack %s %d %s %s %s", &a.stream, &a.version, &a.ids[0], &a.ids[1], &a.ids[2]); err != nil {
					return
				}
				mu.Lock()
				acks = append(acks, a)
				n := len(acks)
				mu.Unlock()
				if n >= killAfter {
					kill.Do(func() { c.Kill() })
				}
			},
		})
		c.Release(t)
		if !c.Killed() {
			t.Fatalf("writer process ended with %v, want it killed after %d acknowledged appends", c.Wait(), killAfter)
		}

		ctx := t.Context()
		if kind == testdb.Postgres {
			for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
				var n int64
				if err := db.Gorm.WithContext(ctx).Raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", appName).Scan(&n).Error; err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatalf("%d sessions of the killed writer still open after 30s", n)
				}
			}
		}
		all := testkit.MustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		testkit.CheckOrder(t, "ReadAll", all)
		byID := map[string]event.Event{}
		perStream := map[string][]event.Event{}
		for _, e := range all {
			byID[e.ID.String()] = e
			perStream[e.StreamID] = append(perStream[e.StreamID], e)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range acks {
			for i, id := range a.ids {
				e, ok := byID[id]
				if !ok {
					t.Errorf("acknowledged event %s (%s@%d) is missing after the crash", id, a.stream, a.version+int64(i))
					continue
				}
				if e.StreamID != a.stream || e.Version != a.version+int64(i) {
					t.Errorf("acknowledged event %s is stored at %s@%d, want %s@%d", id, e.StreamID, e.Version, a.stream, a.version+int64(i))
				}
			}
		}
		for stream, evs := range perStream {
			if len(evs)%3 != 0 {
				t.Errorf("stream %q holds %d events after the crash, want whole appends of 3", stream, len(evs))
			}
			for i, e := range evs {
				tick := e.Data.(testkit.Tick)
				if e.Version != int64(i+1) || tick.Seq%3 != i%3 {
					t.Errorf("stream %q: event %d is version %d with %+v: a hole or a partial append", stream, i, e.Version, tick)
					break
				}
			}
		}
		t.Logf("%d appends acknowledged, %d events stored", len(acks), len(all))
		// The store takes appends after the crash.
		for stream, evs := range perStream {
			testkit.MustAppend(t, s, stream, event.Exact(int64(len(evs))), []any{testkit.Noted{Text: "after the crash"}})
		}
	})
}
