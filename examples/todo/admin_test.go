package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// TestAdmin runs `todo admin` and `cairn`, the real binaries, against the
// database of a todo app that runs in other processes (a web process and a
// processors process), on SQLite and PostgreSQL.
func TestAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bin := buildBinary(t)
	cairn := filepath.Join(t.TempDir(), "cairn")
	if out, err := exec.Command("go", "build", "-o", cairn, "../../cmd/cairn").CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/cairn: %v\n%s", err, out)
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		todoAdmin := func(t *testing.T, args ...string) cmdResult {
			return runCmd(t, bin, append([]string{"admin", "-db", db.DSN}, args...)...)
		}
		standalone := func(t *testing.T, args ...string) cmdResult {
			return runCmd(t, cairn, append([]string{"-db", db.DSN}, args...)...)
		}

		if r := todoAdmin(t, "migrate"); r.code != 0 {
			t.Fatalf("todo admin migrate: %v", r)
		}
		web := runBinary(t, bin, "web", "-db", db.DSN, "-addr", "127.0.0.1:0")
		runBinary(t, bin, "processors", "-db", db.DSN, "-status-addr", "127.0.0.1:0")
		for _, r := range workload(12) {
			send(t, r.method, web.url+r.path, r.body)
		}
		store := newTestStore(t, db)
		head := caughtUp(t, store, todoAdmin)

		t.Run("status lists the four processors with their lag", func(t *testing.T) {
			st := jsonLines[statusLine](t, todoAdmin(t, "status", "--json").ok(t))
			want := map[string]string{projections.OutstandingName: "projector", projections.ScheduledName: "projector",
				projections.CompletedName: "projector", notify.Name: "reactor"}
			for _, s := range st {
				if want[s.Name] != s.Kind || s.State != "live" || s.Owner == "" || s.Head != head || s.Lag != s.Head-s.Position {
					t.Errorf("status line %+v, want a live %s with an owner, head %d and lag = head - position", s, want[s.Name], head)
				}
			}
			// A processor behind the head shows its lag in events and
			// seconds: the notifier moved back (cmd/cairn, position only).
			r := standalone(t, "reset", notify.Name, "--to", "1", "--yes", "--json").ok(t)
			if rl := jsonLines[resetLine](t, r); len(rl) != 1 || rl[0].From != head || rl[0].To != 1 || rl[0].TablesCleared {
				t.Errorf("cairn reset --to 1 = %s, want from %d to 1, no tables cleared", r, head)
			}
			time.Sleep(10 * time.Millisecond)
			st = jsonLines[statusLine](t, standalone(t, "status", "--json").ok(t))
			i := slices.IndexFunc(st, func(s statusLine) bool { return s.Name == notify.Name })
			if i < 0 || st[i].Kind != "unknown" {
				t.Fatalf("cairn status = %+v, want the notifier, of unknown kind", st)
			}
			if n := st[i]; n.Position < head && (n.Lag != head-n.Position || n.LagSeconds <= 0) {
				t.Errorf("notifier behind the head: %+v, want lag %d and a positive lag in seconds", n, head-n.Position)
			}
			if again := caughtUp(t, store, todoAdmin); again != head {
				t.Errorf("after replaying, the head moved from %d to %d: the notifier stored its events twice", head, again)
			}
		})

		t.Run("events lists what the API wrote, in order", func(t *testing.T) {
			var want []eventLine
			for e, err := range store.store.ReadAll(t.Context(), 0, 0) {
				if err != nil {
					t.Fatal(err)
				}
				data, _ := json.Marshal(e.Data)
				want = append(want, eventLine{Position: e.Position, ID: e.ID.String(), Stream: e.StreamID, Version: e.Version, Type: e.Type, Data: data})
			}
			got := jsonLines[eventLine](t, todoAdmin(t, "events", "--all", "--json").ok(t))
			if len(got) != len(want) || len(got) == 0 {
				t.Fatalf("events --all: %d events, want %d", len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Position != w.Position || g.ID != w.ID || g.Stream != w.Stream || g.Version != w.Version || g.Type != w.Type || !jsonEqual(g.Data, w.Data) {
					t.Errorf("events --all line %d = %+v, want %+v", i, g, w)
				}
			}
			// cmd/cairn prints the same without the app's types.
			if same := jsonLines[eventLine](t, standalone(t, "events", "--all", "--json").ok(t)); !slices.EqualFunc(same, got, eventLine.equal) {
				t.Errorf("cairn events --all differs from todo admin events --all")
			}
			// A stream, a type, a limit; text lines.
			stream := want[0].Stream
			one := jsonLines[eventLine](t, standalone(t, "events", stream, "--json").ok(t))
			if len(one) == 0 || slices.ContainsFunc(one, func(e eventLine) bool { return e.Stream != stream }) {
				t.Errorf("cairn events %s = %+v, want only that stream's events", stream, one)
			}
			typed := jsonLines[eventLine](t, standalone(t, "events", "--all", "--type", todo.CompletedType, "--type", todo.AbandonedType, "--json").ok(t))
			if len(typed) == 0 || slices.ContainsFunc(typed, func(e eventLine) bool { return e.Type != todo.CompletedType && e.Type != todo.AbandonedType }) {
				t.Errorf("events --type = %+v, want only completions and abandons", typed)
			}
			text := todoAdmin(t, "events", "--all", "--limit", "2").ok(t)
			if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], fmt.Sprintf("%d %s 1 %s ", want[0].Position, stream, todo.AddedType)) {
				t.Errorf("events --all --limit 2 =\n%s\nwant two lines, the first of %s", text, stream)
			}
			if r := standalone(t, "events", "todo-nothing"); r.code != 1 {
				t.Errorf("events of a stream with no events: %v, want exit 1", r)
			}
		})

		t.Run("events --follow prints an event appended after it started", func(t *testing.T) {
			last := fmt.Sprintf("%d ", head)
			lines := make(chan string, 100)
			c := testkit.StartChild(t, testkit.ChildOptions{
				Program:      bin,
				Args:         []string{"admin", "-db", db.DSN, "events", "--all", "--follow"},
				Ready:        func(line string) bool { return strings.HasPrefix(line, last) },
				ReadyTimeout: time.Minute,
				OnLine:       func(_ *testkit.Child, line string) { lines <- line },
			})
			id := todoID(9001)
			must(t, "POST", web.url+"todo/"+id, `{"title":"Followed"}`, 201)
			caughtUp(t, store, todoAdmin)
			select {
			case line := <-lines:
				if !strings.Contains(line, " "+todo.StreamID(id)+" 1 "+todo.AddedType+" ") || !strings.Contains(line, `"title":"Followed"`) {
					t.Errorf("events --follow printed %q, want the new todo_added", line)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("events --follow printed nothing within 30s of the append; stderr:\n%s", c.Stderr())
			}
			if err := c.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if err := c.Wait(); err != nil {
				t.Errorf("events --follow after SIGINT: %v, want exit 0", err)
			}
		})

		t.Run("reset of projections while the processors run rebuilds them", func(t *testing.T) {
			head := caughtUp(t, store, todoAdmin)
			before := map[string]list{}
			for _, l := range []string{"outstanding", "scheduled", "completed"} {
				before[l] = getList(t, web.url+"todos/"+l)
			}
			if len(before["outstanding"]) == 0 || len(before["completed"]) == 0 {
				t.Fatalf("nothing to rebuild: %v", before)
			}
			if r := todoAdmin(t, "reset", projections.OutstandingName); r.code != 2 {
				t.Errorf("reset without --yes and no terminal: %v, want exit 2", r)
			}
			for _, p := range []string{projections.OutstandingName, projections.CompletedName} {
				r := jsonLines[resetLine](t, todoAdmin(t, "reset", p, "--yes", "--json").ok(t))
				if len(r) != 1 || r[0].From != head || r[0].To != 0 || !r[0].TablesCleared {
					t.Errorf("reset %s = %+v, want from %d to 0 with its tables cleared", p, r, head)
				}
			}
			if r := todoAdmin(t, "reset", projections.ScheduledName, "--to", "3", "--yes"); r.code != 2 {
				t.Errorf("reset of a projector --to 3: %v, want exit 2 (projectors reset to 0 only)", r)
			}
			if r := todoAdmin(t, "reset", notify.Name, "--to", "3", "--yes"); r.code != 2 {
				t.Errorf("reset of the stateful notifier --to 3: %v, want exit 2 (its state would be left ahead)", r)
			}
			for l, want := range before {
				waitForList(t, web.url+"todos/"+l, want)
			}
			waitFor(t, "the reset projectors to catch up", func() bool {
				st := jsonLines[statusLine](t, todoAdmin(t, "status", "--json").ok(t))
				return !slices.ContainsFunc(st, func(s statusLine) bool { return s.Position != head || s.State != "live" })
			})

			// A versioned projection rebuilds beside the active version
			// and is swapped in; the lists never change meanwhile.
			type rebuildLine struct {
				Projector, Label string
			}
			rb := jsonLines[rebuildLine](t, todoAdmin(t, "rebuild", projections.OutstandingName, "--yes", "--json").ok(t))
			if len(rb) != 1 || rb[0].Projector != projections.OutstandingName || rb[0].Label == "" {
				t.Errorf("rebuild %s = %+v, want the label of the version swapped in", projections.OutstandingName, rb)
			}
			for l, want := range before {
				waitForList(t, web.url+"todos/"+l, want)
			}
		})

		t.Run("cairn runs the commands that need no types", func(t *testing.T) {
			streams := jsonLines[streamLine](t, standalone(t, "streams", "--prefix", "todo-", "--json").ok(t))
			if len(streams) != 13 || slices.ContainsFunc(streams, func(s streamLine) bool { return s.Version < 1 || s.LastRecordedAt.Before(s.FirstRecordedAt) }) {
				t.Errorf("cairn streams --prefix todo- = %+v, want the 13 todos' streams", streams)
			}
			if r := standalone(t, "check"); r.code != 2 || !strings.Contains(r.stderr, "application's event types") {
				t.Errorf("cairn check: %v, want exit 2 saying it needs the application's types", r)
			}
			if r := standalone(t, "parked", "list", notify.Name); r.code != 0 || !strings.HasPrefix(r.stdout, "POSITION") || strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("cairn parked list: %v, want exit 0 and no parked events", r)
			}
			if r := standalone(t, "parked", "retry", notify.Name); r.code != 2 || !strings.Contains(r.stderr, "application's event types") {
				t.Errorf("cairn parked retry: %v, want exit 2 saying it needs the application's types", r)
			}
			vo := jsonLines[verifyLine](t, standalone(t, "verify-order", "--events", "400", "--writers", "4", "--json").ok(t))
			if len(vo) != 5 || !vo[4].OK || vo[4].Written != 400 || vo[4].Prefix == "" {
				t.Fatalf("cairn verify-order = %+v, want 4 readers and an OK summary of 400 events", vo)
			}
			for _, r := range vo[:4] {
				if !r.OK || r.Received != 400 || r.Skipped+r.Repeated != 0 {
					t.Errorf("verify-order reader %+v, want all 400 once", r)
				}
			}
			if tables := tablesLike(t, db, vo[4].Prefix); len(tables) != 0 {
				t.Errorf("verify-order left its scratch tables: %v", tables)
			}
			if r := standalone(t, "migrate", "--json").ok(t); !strings.Contains(r, `"migrated":true`) {
				t.Errorf("cairn migrate --json = %s", r)
			}
			if r := standalone(t, "bogus"); r.code != 2 {
				t.Errorf("cairn bogus: %v, want exit 2", r)
			}
			if r := standalone(t, "-h"); r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
				t.Errorf("cairn -h: %v, want exit 0 with examples", r)
			}
		})

		t.Run("check passes, then fails on undecodable data written directly", func(t *testing.T) {
			out := jsonLines[checkLine](t, todoAdmin(t, "check", "--json").ok(t))
			sum := out[len(out)-1]
			if sum.Record != "summary" || !sum.OK || sum.Failed != 0 || sum.Events == 0 {
				t.Fatalf("check --json summary = %+v, want ok", sum)
			}
			pos := insertRaw(t, db, "todo-"+todoID(9999), todo.AddedType, `{"title": 42}`)
			r := todoAdmin(t, "check")
			if r.code != 1 {
				t.Fatalf("check after a bad event: %v, want exit 1", r)
			}
			if want := fmt.Sprintf("FAILED position %d, stream todo-%s (version 1), type %s", pos, todoID(9999), todo.AddedType); !strings.Contains(r.stdout, want) {
				t.Errorf("check output:\n%s\nwant a line starting %q", r.stdout, want)
			}
			fails := jsonLines[checkLine](t, todoAdmin(t, "check", "--json").stdout)
			if len(fails) == 0 || fails[0].Record != "failure" || fails[0].Position != pos || fails[0].Type != todo.AddedType || fails[0].Error == "" {
				t.Errorf("check --json = %+v, want a failure at position %d first", fails, pos)
			}
		})
	})
}

// cmdResult is how a command run ended.
type cmdResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cmdResult) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// ok fails t unless the command exited 0, and returns its output.
func (r cmdResult) ok(t testing.TB) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return r.stdout
}

// runCmd runs a program to its end (at most two minutes).
func runCmd(t testing.TB, prog string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cmdResult{args: append([]string{filepath.Base(prog)}, args...), stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", r.args, err)
	}
	return r
}

// jsonLines decodes one JSON object per line.
func jsonLines[T any](t testing.TB, out string) []T {
	t.Helper()
	var all []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		all = append(all, v)
	}
	return all
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type statusLine struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`
	State      string  `json:"state"`
	Owner      string  `json:"owner"`
	Position   int64   `json:"position"`
	Head       int64   `json:"head"`
	Lag        int64   `json:"lag"`
	LagSeconds float64 `json:"lag_seconds"`
	Parked     *int64  `json:"parked"`
	LastError  string  `json:"last_error"`
}

type eventLine struct {
	Position int64           `json:"position"`
	ID       string          `json:"id"`
	Stream   string          `json:"stream"`
	Version  int64           `json:"version"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
}

func (e eventLine) equal(o eventLine) bool {
	return e.Position == o.Position && e.ID == o.ID && e.Stream == o.Stream && e.Version == o.Version && e.Type == o.Type && jsonEqual(e.Data, o.Data)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && jsonString(x) == jsonString(y)
}

type resetLine struct {
	From          int64 `json:"from"`
	To            int64 `json:"to"`
	TablesCleared bool  `json:"tables_cleared"`
}

type streamLine struct {
	Stream          string    `json:"stream"`
	Version         int64     `json:"version"`
	FirstRecordedAt time.Time `json:"first_recorded_at"`
	LastRecordedAt  time.Time `json:"last_recorded_at"`
}

type verifyLine struct {
	Reader   string `json:"reader"`
	Written  int    `json:"written"`
	Received int    `json:"received"`
	Skipped  int    `json:"skipped"`
	Repeated int    `json:"repeated"`
	OK       bool   `json:"ok"`
	Prefix   string `json:"prefix"`
}

type checkLine struct {
	Record   string `json:"record"`
	Position int64  `json:"position"`
	Type     string `json:"type"`
	Error    string `json:"error"`
	Events   int64  `json:"events"`
	Failed   int64  `json:"failed"`
	OK       bool   `json:"ok"`
}

// newTestStore is the app wired on the test's database, for reading its
// store; it runs nothing.
func newTestStore(t *testing.T, db testdb.DB) *app {
	t.Helper()
	a, err := newApp(db.Gorm, config{logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// insertRaw writes an event into the events table directly, as version 1
// of a new stream, bypassing the store's checks, and returns its position.
func insertRaw(t *testing.T, db testdb.DB, stream, typ, data string) int64 {
	t.Helper()
	sqlDB, err := db.Gorm.DB()
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	q := "INSERT INTO cairn_events (event_id, stream_id, version, type, schema_version, data, recorded_at) VALUES (?, ?, 1, ?, 1, ?, ?)"
	var idArg, at any = id[:], time.Now().UnixMicro()
	if db.Kind == testdb.Postgres {
		q = "INSERT INTO cairn_events (event_id, stream_id, version, type, schema_version, data, recorded_at) VALUES ($1, $2, 1, $3, 1, $4, $5)"
		idArg, at = id.String(), time.Now()
	}
	if _, err := sqlDB.ExecContext(t.Context(), q, idArg, stream, typ, []byte(data), at); err != nil {
		t.Fatal(err)
	}
	var pos int64
	if err := db.Gorm.Raw("SELECT position FROM cairn_events WHERE stream_id = ?", stream).Scan(&pos).Error; err != nil {
		t.Fatal(err)
	}
	return pos
}

// caughtUp waits until `todo admin status` shows every processor at the
// store's head, the head having stopped moving (the notifier emits events
// of its own), and returns the head.
func caughtUp(t *testing.T, a *app, todoAdmin func(*testing.T, ...string) cmdResult) int64 {
	t.Helper()
	var head int64
	waitFor(t, "the processors to catch up", func() bool {
		st := jsonLines[statusLine](t, todoAdmin(t, "status", "--json").ok(t))
		h, err := a.store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		head = h
		return len(st) == 4 && !slices.ContainsFunc(st, func(s statusLine) bool { return s.Position != h || s.Lag != 0 })
	})
	return head
}

// tablesLike lists the tables whose names start with prefix.
func tablesLike(t *testing.T, db testdb.DB, prefix string) []string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, length(?)) = ?"
	if db.Kind == testdb.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND substr(table_name, 1, length(?)) = ?"
	}
	var tables []string
	if err := db.Gorm.Raw(q, prefix, prefix).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	return tables
}
