package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// TestSeparateProcesses runs the built binary as a web process and a
// processors process on one database, kills the processors process (kill
// -9) while commands stream in, starts it again, and checks that the lists
// end up as a single in-process app computes them, with each notification
// recorded once.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		// Mostly waiting: after the kill, the restarted processors wait for
		// the dead process's leases to expire.
		t.Parallel()
		requests := workload(60)

		// What one process computes.
		single := startApp(t, kind)
		wantStatuses := make([]int, len(requests))
		for i, r := range requests {
			wantStatuses[i] = send(t, r.method, single.url+r.path, r.body).status
		}
		head, err := single.store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range single.processors() {
			if err := p.WaitFor(t.Context(), head); err != nil {
				t.Fatalf("%s: WaitFor(%d): %v", p.Name(), head, err)
			}
		}
		wantLists := map[string]list{}
		for _, l := range []string{"outstanding", "scheduled", "completed"} {
			wantLists[l] = getList(t, single.url+"/todos/"+l)
		}
		wantNotified := notifiedCounts(t, single.app)
		if len(wantLists["completed"]) == 0 || len(wantNotified) == 0 {
			t.Fatalf("the workload completes no todos or notifies nobody: %v", wantNotified)
		}

		// The same in separate processes.
		db := testdb.New(t, kind)
		runBinary(t, bin, "migrate", "-db", db.DSN).wait(t)
		web := runBinary(t, bin, "web", "-db", db.DSN, "-addr", "127.0.0.1:0")
		processors := runBinary(t, bin, "processors", "-db", db.DSN, "-status-addr", "127.0.0.1:0")

		third := len(requests) / 3
		for i, r := range requests {
			switch i {
			case third:
				// Let the processors get going, then kill them mid-stream.
				waitForStatus(t, processors.url, func(s []statusJSON) bool {
					return len(s) == 4 && !slices.ContainsFunc(s, func(s statusJSON) bool { return s.Position == 0 })
				})
			case third + third/2:
				var at []string
				for _, s := range getStatus(t, processors.url) {
					at = append(at, fmt.Sprintf("%s %s at %d", s.Name, s.State, s.Position))
				}
				processors.kill(t)
				t.Logf("killed the processors (%s) with %d of %d requests sent", strings.Join(at, ", "), i, len(requests))
			case 2 * third:
				processors = runBinary(t, bin, "processors", "-db", db.DSN, "-status-addr", "127.0.0.1:0")
			}
			if got := send(t, r.method, web.url+r.path, r.body).status; got != wantStatuses[i] {
				t.Errorf("%s %s %s = %d, want %d as in one process", r.method, r.path, r.body, got, wantStatuses[i])
			}
		}

		for l, want := range wantLists {
			waitForList(t, web.url+"todos/"+l, want)
		}
		// The notifier catches up too, and records each notification once,
		// even those it may have sent again after the kill.
		check, err := newApp(db.Gorm, config{logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for got := notifiedCounts(t, check); !maps(got, wantNotified); got = notifiedCounts(t, check) {
			if time.Now().After(deadline) {
				t.Fatalf("notification events per todo: got %v, want %v", got, wantNotified)
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitForStatus(t, processors.url, func(s []statusJSON) bool {
			return len(s) == 4 && !slices.ContainsFunc(s, func(s statusJSON) bool { return s.LastError != nil })
		})

		// Both shut down cleanly on SIGTERM.
		web.stop(t)
		processors.stop(t)
	})
}

// buildBinary builds the app's binary into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "todo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// workload returns a deterministic mix of commands on n todos, interleaved:
// adds with and without due dates and stakeholders, amends (some with no
// projected field at all), completes, abandons, and some rejected commands.
func workload(n int) []request {
	scripts := make([][]request, n)
	for i := range n {
		path := "/todo/" + todoID(i+1)
		add := fmt.Sprintf(`{"title":"Todo %d"`, i+1)
		if i%3 == 0 {
			add += fmt.Sprintf(`,"due_date":"2017-06-%02d"`, i%28+1)
		}
		if i%4 == 0 {
			add += fmt.Sprintf(`,"stakeholder_email":"s%d@example.com"`, i+1)
		}
		s := []request{{method: "POST", path: path, body: add + "}"}}
		switch i % 5 {
		case 0:
			s = append(s, request{method: "PUT", path: path, body: fmt.Sprintf(`{"title":"Todo %d, amended","due_date":null}`, i+1)})
		case 1:
			s = append(s, request{method: "PUT", path: path, body: `{}`})
		case 2:
			s = append(s, request{method: "PUT", path: path, body: `{"due_date":"2018-01-01T12:00:00Z","stakeholder_email":"late@example.com"}`})
		}
		switch i % 3 {
		case 0:
			s = append(s, request{method: "POST", path: path + "/complete", body: fmt.Sprintf(`{"completed_on":"2017-07-%02d"}`, i%28+1)})
		case 1:
			if i%2 == 0 {
				s = append(s, request{method: "POST", path: path + "/abandon", body: `{"abandoned_on":"2017-07-01"}`})
				s = append(s, request{method: "POST", path: path + "/complete", body: `{"completed_on":"2017-07-01"}`}) // rejected
			}
		}
		scripts[i] = s
	}
	// Round-robin over the todos, a few at a time, so that their events
	// interleave in the store.
	var all []request
	for step := 0; ; step++ {
		added := false
		for _, s := range scripts {
			if step < len(s) {
				all = append(all, s[step])
				added = true
			}
		}
		if !added {
			return all
		}
	}
}

// notifiedCounts counts the notification events of each todo in a's store.
func notifiedCounts(t testing.TB, a *app) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for e, err := range a.store.ReadAll(t.Context(), 0, 0, todo.StakeholderNotifiedOfCompletionType) {
		if err != nil {
			t.Fatal(err)
		}
		counts[todo.IDFromStream(e.StreamID)]++
	}
	return counts
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// process is a running process of the binary.
type process struct {
	*testkit.Child
	mode string // its first argument
	url  string // the URL it printed, if any
}

// runBinary starts the binary with args and, unless it is a migrate, waits
// up to a minute until it prints the URL it serves. The process is killed
// when the test ends; its standard error is in the test's output if the
// test fails.
func runBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{mode: args[0]}
	t.Cleanup(func() { // after StartChild's cleanup has killed it
		if p.Child != nil && t.Failed() {
			t.Logf("%s %s, standard error:\n%s", filepath.Base(bin), args[0], p.Stderr())
		}
	})
	p.Child = testkit.StartChild(t, testkit.ChildOptions{
		Program: bin,
		Args:    args,
		DropEnv: []string{"TODO_"},
		Ready: func(line string) bool {
			p.url = urlPattern.FindString(line)
			return p.url != ""
		},
		NoWait:       args[0] == "migrate",
		ReadyTimeout: time.Minute,
	})
	return p
}

var urlPattern = regexp.MustCompile(`http://\S+`)

// wait waits up to a minute for the process to exit, and fails t unless
// it exits with status 0.
func (p *process) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit within a minute", p.mode)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// kill kills the process at once, as kill -9 does.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
}

// statusJSON is what the test reads of a processor's status JSON.
type statusJSON struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Position  int64   `json:"position"`
	LastError *string `json:"last_error"`
}

// getStatus reads a runner's status.
func getStatus(t *testing.T, url string) []statusJSON {
	t.Helper()
	var s struct{ Processors []statusJSON }
	res := send(t, "GET", url, "")
	if err := json.Unmarshal([]byte(res.body), &s); err != nil {
		t.Fatalf("GET %s = %v: %v", url, res, err)
	}
	return s.Processors
}

// waitForStatus polls a processors status URL until ok accepts it.
func waitForStatus(t *testing.T, url string, ok func([]statusJSON) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := getStatus(t, url)
		if ok(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %+v", url, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAllInOne runs the binary in its default mode on a new SQLite file:
// it migrates, serves, processes and stops cleanly on SIGTERM.
func TestAllInOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	c := runBinary(t, bin, "-db", filepath.Join(t.TempDir(), "todo.db"), "-addr", "127.0.0.1:0")
	must(t, "POST", c.url+"todo/"+todoID(1), `{"title":"Buy milk","stakeholder_email":"bob@example.com"}`, 201)
	must(t, "POST", c.url+"todo/"+todoID(1)+"/complete", `{"completed_on":"2017-06-13"}`, 200)
	waitForList(t, c.url+"todos/completed", list{
		row("todo_id", todoID(1), "title", "Buy milk", "description", nil, "due_date", nil, "stakeholder_email", "bob@example.com", "completed_on", "2017-06-13 00:00:00 UTC"),
	})
	if got := send(t, "GET", c.url+"processors", ""); got.status != 200 || !strings.Contains(got.body, notify.Name) {
		t.Errorf("GET /processors = %v", got)
	}
	// The list shows the projector has caught up, not the notifier: wait
	// for its mail in the log before stopping (a loaded machine may stop
	// the app before the reactor has handled the completion).
	wants := []string{"To: bob@example.com", "Message: Your todo item Buy milk has been completed!"}
	logged := func() bool {
		data := c.Stderr()
		for _, want := range wants {
			if !strings.Contains(data, want) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !logged() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	c.stop(t)
	data := c.Stderr()
	for _, want := range wants {
		if !strings.Contains(data, want) {
			t.Errorf("the log has no %q:\n%s", want, data)
		}
	}
}
