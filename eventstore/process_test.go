package eventstore_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// Environment of a helper process (see TestHelperProcess).
const (
	envHelper  = "CAIRN_EVENTSTORE_HELPER" // "migrate" or "write"
	envKind    = "CAIRN_EVENTSTORE_KIND"
	envDSN     = "CAIRN_EVENTSTORE_DSN"
	envPrefix  = "CAIRN_EVENTSTORE_PREFIX"
	envFirst   = "CAIRN_EVENTSTORE_FIRST_WRITER"
	envWriters = "CAIRN_EVENTSTORE_WRITERS"
	envEvents  = "CAIRN_EVENTSTORE_EVENTS" // per writer
	envOut     = "CAIRN_EVENTSTORE_OUT"    // file for the acknowledged events
)

// TestHelperProcess is not a test: it is the child process of the
// multi-process tests. It opens the database named by the environment,
// prints "ready", waits for a line on stdin and then migrates the store
// or writes events with several writers, saving what was acknowledged.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		t.Skip("child process of the multi-process tests")
	}
	kind := testdb.Kind(os.Getenv(envKind))
	db, err := testdb.Open(kind, os.Getenv(envDSN))
	if err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	s := newStore(t, db, newRegistry(), eventstore.Options{
		TablePrefix:  os.Getenv(envPrefix),
		PollInterval: 20 * time.Millisecond,
	})
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("wait for the go signal: %v", err)
	}
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	switch mode {
	case "migrate":
		return
	case "crash":
		crashWriter(t, s, envInt(t, envWriters))
		return
	}

	first := envInt(t, envFirst)
	writers := envInt(t, envWriters)
	events := envInt(t, envEvents)
	acked := make([][]event.Event, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var err error
			acked[w], err = writeTicks(ctx, s, first+w, events, nil)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	for _, a := range acked {
		for _, e := range a {
			// Data and the time go as they are: the parent compares
			// every field with what it reads.
			if err := enc.Encode(ackedEvent{e.Position, e.ID.String(), e.StreamID, e.Version, e.Type, e.Data.(Tick), e.RecordedAt}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(os.Getenv(envOut), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type ackedEvent struct {
	Position   int64
	ID         string
	StreamID   string
	Version    int64
	Type       string
	Data       Tick
	RecordedAt time.Time
}

func envInt(t *testing.T, name string) int {
	t.Helper()
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// child is a running helper process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	output *bytes.Buffer // everything after "ready"
	onLine func(string)  // called for each line of output after "ready"
	done   chan error
}

// startChild starts a helper process and waits until it is ready.
func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	return startChildLines(t, nil, env...)
}

// startChildLines is startChild calling onLine with every line the
// child prints after "ready", as it comes.
func startChildLines(t *testing.T, onLine func(string), env ...string) *child {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper process: %v", err)
	}
	c := &child{cmd: cmd, stdin: stdin, output: new(bytes.Buffer), done: make(chan error, 1)}
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		rest, _ := io.ReadAll(r)
		cmd.Wait()
		t.Fatalf("helper process did not get ready (%v): %s%s\n%s", err, line, rest, stderr.String())
	}
	go func() {
		for {
			line, err := r.ReadString('\n')
			c.output.WriteString(line)
			if onLine != nil && strings.HasSuffix(line, "\n") {
				onLine(strings.TrimSuffix(line, "\n"))
			}
			if err != nil {
				break
			}
		}
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w\nstdout:\n%s\nstderr:\n%s", err, c.output, stderr.String())
		}
		c.done <- err
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
	})
	return c
}

func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatalf("release helper process: %v", err)
	}
}

func (c *child) wait(t *testing.T) {
	t.Helper()
	if err := <-c.done; err != nil {
		t.Errorf("helper process: %v", err)
	}
}

func childEnv(mode string, db testdb.DB, prefix string) []string {
	return []string{envHelper + "=" + mode, envKind + "=" + string(db.Kind), envDSN + "=" + db.DSN, envPrefix + "=" + prefix}
}

// Two processes and this one migrate a fresh database at the same time.
func TestMigrateConcurrentProcesses(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		const prefix = "proc_"
		children := []*child{startChild(t, childEnv("migrate", db, prefix)...), startChild(t, childEnv("migrate", db, prefix)...)}
		s := newStore(t, db.Gorm, newRegistry(), eventstore.Options{TablePrefix: prefix})
		for _, c := range children {
			c.release(t)
		}
		err := s.Migrate(t.Context())
		for _, c := range children {
			c.wait(t)
		}
		if err != nil {
			t.Fatalf("Migrate() = %v, want nil", err)
		}
		got := mustAppend(t, s, "after-migrate", event.NoStream, []any{Note{Text: "ok"}})
		checkEvents(t, "ReadAll", mustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0)), got)
	})
}

// The writers run in two other processes, four each, while this process
// subscribes: the subscription receives every committed event once, in
// increasing positions, skipping none.
func TestSubscribeOrderingWritersInOtherProcesses(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		const (
			processes = 2
			writers   = 4 // per process
			prefix    = "xproc_"
		)
		total := orderingEvents(kind)
		perWriter := total / (processes * writers)
		db := testdb.New(t, kind)
		s := newStore(t, db.Gorm, newRegistry(), eventstore.Options{TablePrefix: prefix, PollInterval: 20 * time.Millisecond})
		migrate(t, s)
		ctx := t.Context()
		sub := follow(ctx, s, 0)

		dir := t.TempDir()
		var children []*child
		for p := range processes {
			env := append(childEnv("write", db, prefix),
				fmt.Sprintf("%s=%d", envFirst, p*writers),
				fmt.Sprintf("%s=%d", envWriters, writers),
				fmt.Sprintf("%s=%d", envEvents, perWriter),
				fmt.Sprintf("%s=%s", envOut, filepath.Join(dir, fmt.Sprintf("acked-%d.json", p))),
			)
			children = append(children, startChild(t, env...))
		}
		for _, c := range children {
			c.release(t)
		}
		for _, c := range children {
			c.wait(t)
		}
		if t.Failed() {
			sub.stop(t)
			t.FailNow()
		}

		var acked []event.Event
		for p := range processes {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("acked-%d.json", p)))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			for {
				var a ackedEvent
				if err := dec.Decode(&a); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("decode the acknowledged events of process %d: %v", p, err)
				}
				e := event.Event{Position: a.Position, StreamID: a.StreamID, Version: a.Version, Type: a.Type, Data: a.Data, RecordedAt: a.RecordedAt.UTC()}
				if err := e.ID.UnmarshalText([]byte(a.ID)); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, e)
			}
		}
		all := mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		checkOrder(t, "ReadAll", all)
		checkStored(t, all, acked)
		if len(all) != total {
			t.Errorf("ReadAll() has %d events, want %d", len(all), total)
		}
		got := sub.await(t, all)
		checkOrder(t, "Subscribe", got)
		positionsEqual(t, "Subscribe", got, all)
	})
}

// crashWriter appends events in threes with several writers until the
// process is killed, printing each acknowledged append as a line
// "ack <stream> <first version> <id> <id> <id>".
func crashWriter(t *testing.T, s *eventstore.Store, writers int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := 0; ; k++ {
				stream := fmt.Sprintf("crash-%d-%d", w, k%4)
				v := int64(3 * (k / 4))
				got, err := s.Append(t.Context(), stream, event.Exact(v),
					[]any{Tick{Writer: w, Seq: 3 * k}, Tick{Writer: w, Seq: 3*k + 1}, Tick{Writer: w, Seq: 3*k + 2}})
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
		s := newStore(t, db.Gorm, newRegistry(), eventstore.Options{TablePrefix: prefix})
		migrate(t, s)

		type ack struct {
			stream  string
			version int64
			ids     [3]string
		}
		var (
			mu   sync.Mutex
			acks []ack
			c    *child
			kill sync.Once
		)
		const killAfter = 150
		// On PostgreSQL the child's sessions are named, so that we can
		// wait for them to end: a transaction whose COMMIT was sent
		// before the kill may still commit (unacknowledged) afterwards.
		childDB := db
		appName := fmt.Sprintf("cairn_crash_%d", time.Now().UnixNano())
		if kind == testdb.Postgres {
			u, err := url.Parse(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("application_name", appName)
			u.RawQuery = q.Encode()
			childDB.DSN = u.String()
		}
		ready := make(chan struct{})
		c = startChildLines(t, func(line string) {
			var a ack
			if _, err := fmt.Sscanf(line, "ack %s %d %s %s %s", &a.stream, &a.version, &a.ids[0], &a.ids[1], &a.ids[2]); err != nil {
				return
			}
			mu.Lock()
			acks = append(acks, a)
			n := len(acks)
			mu.Unlock()
			if n >= killAfter {
				kill.Do(func() {
					<-ready
					c.cmd.Process.Kill()
				})
			}
		}, append(childEnv("crash", childDB, prefix), envWriters+"=4")...)
		close(ready)
		c.release(t)
		err := <-c.done
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Success() || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("writer process ended with %v, want it killed after %d acknowledged appends", err, killAfter)
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
		all := mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		checkOrder(t, "ReadAll", all)
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
				tick := e.Data.(Tick)
				if e.Version != int64(i+1) || tick.Seq%3 != i%3 {
					t.Errorf("stream %q: event %d is version %d with %+v: a hole or a partial append", stream, i, e.Version, tick)
					break
				}
			}
		}
		t.Logf("%d appends acknowledged, %d events stored", len(acks), len(all))
		// The store takes appends after the crash.
		for stream, evs := range perStream {
			mustAppend(t, s, stream, event.Exact(int64(len(evs))), []any{Note{Text: "after the crash"}})
		}
	})
}
