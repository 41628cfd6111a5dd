package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/runner"
)

// rebuildApp is the app running on a database of its own, with its runner.
type rebuildApp struct {
	*app
	url    string
	runner *runner.Runner
	sender *recordingSender
}

// startRebuildApp migrates db, runs the processors and serves the API
// until the test ends.
func startRebuildApp(t testing.TB, db testdb.DB) *rebuildApp {
	t.Helper()
	sender := &recordingSender{}
	a, err := newApp(db.Gorm, config{logger: testLogger(t), sender: sender})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := a.newRunner()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	srv := httptest.NewServer(a.handler(r.Handler()))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processors: %v", err)
		}
	})
	return &rebuildApp{app: a, url: srv.URL, runner: r, sender: sender}
}

// BenchmarkTodoRebuild measures the rebuild of the todo app's three
// projections over 117,000 events while the app serves: a client reads the
// three lists in a loop (10ms apart) and another adds a todo every 20ms
// through the API. It reports the rebuild's rate — events (positions)
// rebuilt per second, per projector (the three rebuild side by side),
// from the rebuild's request to the last swap — and the list answers per
// second meanwhile.
func BenchmarkTodoRebuild(b *testing.B) {
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			a := startRebuildApp(b, rebuildDB(b, kind))
			seedTodos(b, a.store, 20_000)
			waitIdle(b, a)
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			var answers atomic.Int64
			go func() {
				for ctx.Err() == nil {
					for _, l := range []string{"outstanding", "scheduled", "completed"} {
						if _, err := rawList(ctx, a.url+"/todos/"+l); err != nil {
							if ctx.Err() == nil {
								b.Errorf("GET %s: %v", l, err)
							}
							return
						}
						answers.Add(1)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			go func() {
				for i := 0; ctx.Err() == nil; i++ {
					req, _ := http.NewRequestWithContext(ctx, "POST", a.url+"/todo/"+fmt.Sprintf("00000000-0000-4000-b000-%012d", i), strings.NewReader(`{"title":"bench"}`))
					if res, err := http.DefaultClient.Do(req); err == nil {
						res.Body.Close()
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			var built int64
			var took time.Duration
			for b.Loop() {
				start, a0 := time.Now(), answers.Load()
				if err := a.rebuild(b.Context()); err != nil {
					b.Fatal(err)
				}
				for {
					vs, err := a.versions(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					if !slices.ContainsFunc(vs, func(v projector.Versions) bool { return v.Build != nil }) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				took += time.Since(start)
				built += head(b, a.store)
				b.ReportMetric(float64(answers.Load()-a0)/time.Since(start).Seconds(), "answers/s")
				for _, p := range a.projectors() {
					if _, err := p.DropRetired(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(built)/took.Seconds(), "events/s/projector")
		})
	}
}

// rebuildDB is a database for the rebuild tests: SQLite at
// synchronous=NORMAL, to store the 100,000 events quickly.
func rebuildDB(t testing.TB, kind testdb.Kind) testdb.DB {
	if kind == testdb.SQLite {
		return testdb.NewSQLite(t, sqlitedb.Options{Synchronous: sqlitedb.Normal})
	}
	return testdb.New(t, kind)
}

// seedTodos stores the events of n todos straight into the store, with 8
// concurrent appends (one per todo): an add, four amends, and for 60% of
// them a completion, for 25% an abandonment. It returns the number of
// events.
func seedTodos(t testing.TB, s *eventstore.Store, n int) int {
	t.Helper()
	ctx := t.Context()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				evs := seedEvents(i)
				if _, err := s.Append(ctx, todo.StreamID(seedID(i)), event.NoStream, evs); err != nil {
					t.Errorf("Append() = %v", err)
					return
				}
				mu.Lock()
				total += len(evs)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return total
}

func seedID(i int) string { return fmt.Sprintf("00000000-0000-4000-9000-%012d", i) }

func seedEvents(i int) []any {
	added := todo.Added{Title: fmt.Sprintf("Seeded %d", i)}
	if i%2 == 0 {
		added.Description = todo.Text("seeded")
	}
	if i%3 == 0 {
		added.DueDate = todo.Text(fmt.Sprintf("2017-06-%02d", i%28+1))
	}
	if i%10 == 0 {
		added.StakeholderEmail = todo.Text(fmt.Sprintf("s%d@example.com", i))
	}
	evs := []any{added}
	for k := range 4 {
		am := todo.Amended{Title: todo.Text(fmt.Sprintf("Seeded %d, amended %d", i, k))}
		if k == 2 && i%6 == 0 {
			am.DueDate = todo.Null()
		}
		if k == 3 && i%7 == 0 {
			am.DueDate = todo.Text("2018-01-01T12:00:00Z")
		}
		evs = append(evs, am)
	}
	switch r := i % 20; {
	case r < 12:
		evs = append(evs, todo.Completed{CompletedOn: fmt.Sprintf("2017-07-%02d", i%28+1)})
	case r < 17:
		evs = append(evs, todo.Abandoned{AbandonedOn: "2017-07-01"})
	}
	return evs
}

// waitIdle waits until every processor of a has reached the head, and the
// head has stopped moving (the notifier appends events of its own).
func waitIdle(t testing.TB, a *rebuildApp) int64 {
	t.Helper()
	for {
		h := head(t, a.store)
		for _, p := range a.processors() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			err := p.WaitFor(ctx, h)
			cancel()
			if err != nil {
				t.Fatalf("%s: WaitFor(%d) = %v", p.Name(), h, err)
			}
		}
		if head(t, a.store) == h {
			return h
		}
	}
}

func head(t testing.TB, s *eventstore.Store) int64 {
	t.Helper()
	h, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// rawList reads a list endpoint as its raw JSON rows.
func rawList(ctx context.Context, url string) ([]json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	var rows []json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&rows); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if rows == nil {
		return nil, fmt.Errorf("GET %s: not a JSON array", url)
	}
	return rows, nil
}

// listWatch checks the answers of a list endpoint against a baseline: each
// answer must be the baseline followed by a prefix of the rows added
// since (checked at the end, against the final answer's tail).
type listWatch struct {
	name     string
	baseline []json.RawMessage
	grows    bool // new todos join the end of the list
	answers  int
	tails    [][]json.RawMessage
	errs     []string
}

func (w *listWatch) check(rows []json.RawMessage) {
	w.answers++
	if len(rows) < len(w.baseline) || (!w.grows && len(rows) != len(w.baseline)) {
		w.errs = append(w.errs, fmt.Sprintf("answer %d has %d rows, baseline %d", w.answers, len(rows), len(w.baseline)))
		return
	}
	for i, r := range w.baseline {
		if !bytes.Equal(rows[i], r) {
			w.errs = append(w.errs, fmt.Sprintf("answer %d differs from the baseline at row %d: %s, want %s", w.answers, i, rows[i], r))
			return
		}
	}
	if tail := rows[len(w.baseline):]; len(tail) > 0 {
		w.tails = append(w.tails, tail)
	}
}

// finish checks the tails seen against the final answer's.
func (w *listWatch) finish(t *testing.T, final []json.RawMessage) {
	t.Helper()
	for i, e := range w.errs {
		if i < 5 {
			t.Errorf("%s: %s", w.name, e)
		}
	}
	if len(w.errs) > 0 {
		t.Errorf("%s: %d of %d answers wrong", w.name, len(w.errs), w.answers)
	}
	w.check(final)
	tail := final[len(w.baseline):]
	for _, got := range w.tails {
		if len(got) > len(tail) || !slices.EqualFunc(got, tail[:len(got)], func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Errorf("%s: an answer's new rows %s are not a prefix of the final ones", w.name, got)
			return
		}
	}
}

// TestRebuildWhileServing stores 100,000+ events, then rebuilds the todo
// app's three projections while clients keep adding todos and reading the
// three lists in a loop: no answer fails, none is empty or partial, each
// is what the old version shows (the baseline plus todos added since,
// in order), and after the swap the lists are the baseline plus every
// todo added. The notifier (a reactor) is untouched: it sends and emits
// nothing again, and its position is never reset.
func TestRebuildWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100,000 events")
	}
	if raceEnabled {
		// Over 100,000 events under the race detector this takes longer
		// than the package's test timeout; .ci/run runs it without.
		t.Skip("stores 100,000 events: run without -race (.ci/run does)")
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := rebuildDB(t, kind)
		a := startRebuildApp(t, db)
		events := seedTodos(t, a.store, 20_000)
		if events < 100_000 {
			t.Fatalf("seeded %d events, want 100,000 or more", events)
		}
		waitIdle(t, a)

		// The baseline, and the reactor's state.
		watches := map[string]*listWatch{
			"outstanding": {name: "outstanding", grows: true},
			"scheduled":   {name: "scheduled", grows: true},
			"completed":   {name: "completed"},
		}
		for l, w := range watches {
			rows, err := rawList(t.Context(), a.url+"/todos/"+l)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				t.Fatalf("%s: empty baseline", l)
			}
			w.baseline = rows
		}
		sent, notified := len(a.sender.notifications()), notifiedCounts(t, a.app)
		notifierBefore := positionRow(t, a.store, "todo_completed_notifier")
		if sent == 0 || len(notified) != sent {
			t.Fatalf("the notifier sent %d notifications and emitted %d events, want as many and some", sent, len(notified))
		}

		// Clients: one adds todos, two read the lists in a loop.
		ctx, stopClients := context.WithCancel(t.Context())
		var clients sync.WaitGroup
		clients.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"title":"New %d"`, i)
				if i%2 == 0 {
					body += `,"due_date":"2017-08-01"`
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", a.url+"/todo/"+fmt.Sprintf("00000000-0000-4000-a000-%012d", i), strings.NewReader(body+"}"))
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("add todo %d: %v", i, err)
					}
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					t.Errorf("add todo %d: status %d", i, res.StatusCode)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		var mu sync.Mutex
		var queryErrs []error
		for range 2 {
			clients.Go(func() {
				for ctx.Err() == nil {
					for _, l := range []string{"outstanding", "scheduled", "completed"} {
						rows, err := rawList(ctx, a.url+"/todos/"+l)
						mu.Lock()
						switch {
						case ctx.Err() != nil:
						case err != nil:
							queryErrs = append(queryErrs, err)
						default:
							watches[l].check(rows)
						}
						mu.Unlock()
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}

		// The rebuild, asked for from Go; its progress in the status.
		start := time.Now()
		if err := a.rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for {
			vs, err := a.versions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range a.runner.Status(t.Context()).Processors {
				if p.Rebuild != nil && p.Rebuild.Position > 0 && p.Rebuild.Version == 1 && p.Rebuild.Label == "v1r1" {
					seen[p.Name] = true
				}
			}
			done := true
			for _, v := range vs {
				done = done && v.Active.Label == "v1r1" && v.Build == nil
			}
			if done {
				break
			}
			if time.Since(start) > 10*time.Minute {
				t.Fatalf("the rebuild did not finish within 10 minutes: %+v", vs)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(start)
		time.Sleep(200 * time.Millisecond) // answers after the swap
		stopClients()
		clients.Wait()
		waitIdle(t, a)
		t.Logf("rebuilt 3 projections of %d events in %v while serving (%.0f events/s each)", events, took, float64(events)/took.Seconds())
		if len(seen) != 3 {
			t.Errorf("the runner's status showed the rebuild of %v, want all three projectors", seen)
		}

		for _, e := range queryErrs {
			t.Errorf("query during the rebuild: %v", e)
		}
		for l, w := range watches {
			final, err := rawList(t.Context(), a.url+"/todos/"+l)
			if err != nil {
				t.Fatal(err)
			}
			if w.answers < 10 {
				t.Errorf("%s answered only %d times during the rebuild", l, w.answers)
			}
			w.finish(t, final)
			t.Logf("%s: %d answers, %d baseline rows, %d rows after", l, w.answers, len(w.baseline), len(final))
		}
		// After the swap, the lists are the baseline plus the new todos,
		// in the order they were added.
		out, _ := rawList(t.Context(), a.url+"/todos/outstanding")
		added := out[len(watches["outstanding"].baseline):]
		if len(added) == 0 {
			t.Fatal("no todo added during the rebuild")
		}
		for i, r := range added {
			var row struct {
				TodoID string `json:"todo_id"`
				Title  string `json:"title"`
			}
			if err := json.Unmarshal(r, &row); err != nil || row.Title != fmt.Sprintf("New %d", i) || row.TodoID != fmt.Sprintf("00000000-0000-4000-a000-%012d", i) {
				t.Fatalf("outstanding row %d after the baseline = %s, want new todo %d", i, r, i)
			}
		}

		// The reactor: nothing sent or emitted again, never reset.
		if got := len(a.sender.notifications()); got != sent {
			t.Errorf("the notifier sent %d notifications, %d before the rebuild", got, sent)
		}
		if got := notifiedCounts(t, a.app); !maps(got, notified) {
			t.Errorf("notification events changed during the rebuild: %d todos, %d before", len(got), len(notified))
		}
		if after := positionRow(t, a.store, "todo_completed_notifier"); after.Epoch != notifierBefore.Epoch || after.Position < notifierBefore.Position {
			t.Errorf("notifier position %+v after the rebuild, %+v before: want it never reset", after, notifierBefore)
		}
		all, err := a.store.ListPositions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			if strings.HasPrefix(p.Name, "todo_completed_notifier@") {
				t.Errorf("a build of the notifier: %+v", p)
			}
		}
		if vs, err := a.store.ProjectionVersions(t.Context(), "todo_completed_notifier"); err != nil || len(vs) != 0 {
			t.Errorf("versions of the notifier = %v, %v; want none", vs, err)
		}

		// The retired versions' tables are dropped on command.
		for _, p := range a.projectors() {
			dropped, err := p.DropRetired(t.Context())
			if err != nil || len(dropped) != 1 || dropped[0].Label != "v1" {
				t.Errorf("%s: DropRetired() = %v, %v; want v1 dropped", p.Name(), dropped, err)
			}
		}
		if err := db.Gorm.Exec(`SELECT count(*) FROM ` + projections.OutstandingName + `_v1`).Error; err == nil {
			t.Errorf("the retired table %s_v1 is still there", projections.OutstandingName)
		}
		testkit.Eventually(t, time.Second, "lists answering after the drop", func() bool {
			rows, err := rawList(t.Context(), a.url+"/todos/completed")
			return err == nil && len(rows) == len(watches["completed"].baseline)
		})
	})
}

// positionRow returns the row of the processor name in the positions
// table.
func positionRow(t *testing.T, s *eventstore.Store, name string) eventstore.ProcessorPosition {
	t.Helper()
	all, err := s.ListPositions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no position row for %s", name)
	return eventstore.ProcessorPosition{}
}
