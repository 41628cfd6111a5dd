package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/internal/testdb"
)

// answer is an HTTP answer with its headers.
type answer struct {
	status int
	body   string
	header http.Header
}

// call makes an HTTP request with the given headers (key, value, …).
func call(t testing.TB, method, url, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return answer{status: res.StatusCode, body: string(data), header: res.Header}
}

// add adds a todo through base and returns the position its answer
// carries.
func add(t testing.TB, base, id, title string) int64 {
	t.Helper()
	a := call(t, "POST", base+"todo/"+id, `{"title":"`+title+`"}`)
	pos, err := strconv.ParseInt(a.header.Get("Cairn-Position"), 10, 64)
	if a.status != http.StatusCreated || err != nil || pos <= 0 {
		t.Fatalf("POST %stodo/%s = %d %q with Cairn-Position %q; want 201 and a position", base, id, a.status, a.body, a.header.Get("Cairn-Position"))
	}
	return pos
}

// listIDs decodes a list's answer into its todo IDs.
func listIDs(t testing.TB, a answer) []string {
	t.Helper()
	var rows []struct {
		ID string `json:"todo_id"`
	}
	if a.status != http.StatusOK {
		t.Fatalf("list answered %d %q", a.status, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), &rows); err != nil {
		t.Fatalf("list answered %q: %v", a.body, err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

// TestReadYourWritesSplit is issue 16's test: two web processes and a
// processors process on one PostgreSQL database. Each of 200 rounds adds a
// todo through one web process and lists the outstanding todos through the
// other with the add's position in Cairn-After: the first answer shows the
// todo, with no retry. Then, with the processors stopped, such a query
// answers within its bound with Cairn-Stale: true; with a projection
// recorded as failed, it answers at once; once the processors run again,
// it answers fresh.
func TestReadYourWritesSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	db := testdb.New(t, testdb.Postgres)
	runBinary(t, bin, "migrate", "-db", db.DSN).wait(t)
	const bound = 2 * time.Second
	webs := []*process{
		runBinary(t, bin, "web", "-db", db.DSN, "-addr", "127.0.0.1:0", "-wait-timeout", bound.String()),
		runBinary(t, bin, "web", "-db", db.DSN, "-addr", "127.0.0.1:0", "-wait-timeout", bound.String()),
	}
	processors := runBinary(t, bin, "processors", "-db", db.DSN, "-status-addr", "127.0.0.1:0")
	waitForPositions(t, webs[0].url, func(ps []positionJSON) bool {
		return len(ps) == 4 && !slices.ContainsFunc(ps, func(p positionJSON) bool { return p.State != "running" })
	})

	const rounds = 200
	took := make([]time.Duration, 0, rounds)
	for i := range rounds {
		id := todoID(i + 1)
		pos := add(t, webs[i%2].url, id, fmt.Sprintf("Todo %d", i+1))
		start := time.Now()
		a := call(t, "GET", webs[(i+1)%2].url+"todos/outstanding", "", "Cairn-After", strconv.FormatInt(pos, 10))
		took = append(took, time.Since(start))
		if ids := listIDs(t, a); !slices.Contains(ids, id) || a.header.Get("Cairn-Stale") != "" {
			t.Fatalf("round %d: GET /todos/outstanding with Cairn-After: %d answered %d todos without %s (Cairn-Stale %q)", i, pos, len(ids), id, a.header.Get("Cairn-Stale"))
		}
	}
	slices.Sort(took)
	t.Logf("add, then list with Cairn-After through the other web process: the list took %v median, %v at p99", took[len(took)/2], took[len(took)*99/100])

	// The processors stop: a waiting query answers stale, within its bound.
	processors.stop(t)
	id := todoID(rounds + 1)
	pos := add(t, webs[0].url, id, "While the processors are down")
	start := time.Now()
	a := call(t, "GET", webs[1].url+"todos/outstanding", "", "Cairn-After", strconv.FormatInt(pos, 10))
	elapsed := time.Since(start)
	if a.header.Get("Cairn-Stale") != "true" || slices.Contains(listIDs(t, a), id) || len(listIDs(t, a)) != rounds {
		t.Errorf("with the processors stopped: Cairn-Stale %q and %d todos; want true and the %d there were", a.header.Get("Cairn-Stale"), len(listIDs(t, a)), rounds)
	}
	// The bound plus a generous allowance for the request itself.
	if elapsed > bound+3*time.Second {
		t.Errorf("with the processors stopped, the query answered after %v; want within its bound of %v", elapsed, bound)
	}
	// Without the header, it answers at once, without Cairn-Stale.
	if a := call(t, "GET", webs[1].url+"todos/outstanding", ""); a.status != 200 || a.header.Get("Cairn-Stale") != "" {
		t.Errorf("without Cairn-After: %d, Cairn-Stale %q; want 200 and no header", a.status, a.header.Get("Cairn-Stale"))
	}

	// A projection recorded as stopped after an error: the query does not
	// wait out its bound.
	store, err := eventstore.New(db.Gorm, event.NewRegistry(event.RegistryOptions{}), eventstore.Options{})
	if err == nil {
		err = store.SetProcessorError(t.Context(), projections.OutstandingName, "handle \"todo_added\": boom")
	}
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	a = call(t, "GET", webs[1].url+"todos/outstanding", "", "Cairn-After", strconv.FormatInt(pos, 10))
	if elapsed := time.Since(start); a.header.Get("Cairn-Stale") != "true" || elapsed >= bound {
		t.Errorf("with the projection failed: Cairn-Stale %q after %v; want true, before the bound of %v", a.header.Get("Cairn-Stale"), elapsed, bound)
	}
	waitForPositions(t, webs[0].url, func(ps []positionJSON) bool {
		i := slices.IndexFunc(ps, func(p positionJSON) bool { return p.Name == projections.OutstandingName })
		return i >= 0 && ps[i].State == "failed" && ps[i].LastError != nil && strings.Contains(*ps[i].LastError, "boom")
	})

	// The processors run again: the error is cleared, and the query
	// answers fresh.
	runBinary(t, bin, "processors", "-db", db.DSN, "-status-addr", "127.0.0.1:0")
	waitForPositions(t, webs[0].url, func(ps []positionJSON) bool {
		return len(ps) == 4 && !slices.ContainsFunc(ps, func(p positionJSON) bool { return p.State != "running" })
	})
	a = call(t, "GET", webs[0].url+"todos/outstanding", "", "Cairn-After", strconv.FormatInt(pos, 10))
	if !slices.Contains(listIDs(t, a), id) || a.header.Get("Cairn-Stale") != "" {
		t.Errorf("with the processors back: Cairn-Stale %q, todo listed: %v; want fresh and listed", a.header.Get("Cairn-Stale"), slices.Contains(listIDs(t, a), id))
	}
}

// positionJSON is what the tests read of GET /positions.
type positionJSON struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Position  int64   `json:"position"`
	Lag       int64   `json:"lag"`
	LastError *string `json:"last_error"`
}

// waitForPositions polls GET /positions until ok accepts the processors.
func waitForPositions(t testing.TB, base string, ok func([]positionJSON) bool) {
	t.Helper()
	var got struct {
		Head       int64
		Processors []positionJSON
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		a := call(t, "GET", base+"positions", "")
		if err := json.Unmarshal([]byte(a.body), &got); a.status != 200 || err != nil {
			t.Fatalf("GET /positions = %d %q: %v", a.status, a.body, err)
		}
		if ok(got.Processors) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /positions = %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadYourWrites checks the headers in one process, on both databases:
// commands answer with Cairn-Position, a query with Cairn-After shows the
// write in its first answer, a bad Cairn-After is a 400, and a todo's
// history lists its events.
func TestReadYourWrites(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		a := startApp(t, kind)
		base := a.url + "/"
		var last int64
		for i := range 20 {
			id := todoID(i + 1)
			pos := add(t, base, id, fmt.Sprintf("Todo %d", i+1))
			if pos <= last {
				t.Errorf("add %d: Cairn-Position %d, not after the previous %d", i, pos, last)
			}
			last = pos
			for _, list := range []string{"outstanding", "scheduled", "completed"} {
				ans := call(t, "GET", base+"todos/"+list, "", "Cairn-After", strconv.FormatInt(pos, 10))
				if ans.header.Get("Cairn-Stale") != "" {
					t.Errorf("add %d: GET /todos/%s answered stale", i, list)
				}
				if list == "outstanding" && !slices.Contains(listIDs(t, ans), id) {
					t.Fatalf("add %d: GET /todos/outstanding with Cairn-After: %d does not list %s", i, pos, id)
				}
			}
		}

		id := todoID(1)
		for _, c := range []struct{ method, path, body string }{
			{"PUT", "todo/" + id, `{"title":"Todo 1, amended"}`},
			{"POST", "todo/" + id + "/complete", `{"completed_on":"2017-06-13"}`},
		} {
			ans := call(t, c.method, base+c.path, c.body)
			pos, err := strconv.ParseInt(ans.header.Get("Cairn-Position"), 10, 64)
			if ans.status != 200 || err != nil || pos <= last {
				t.Fatalf("%s /%s = %d with Cairn-Position %q; want 200 and a position after %d", c.method, c.path, ans.status, ans.header.Get("Cairn-Position"), last)
			}
			last = pos
		}
		if ids := listIDs(t, call(t, "GET", base+"todos/completed", "", "Cairn-After", strconv.FormatInt(last, 10))); !slices.Equal(ids, []string{id}) {
			t.Errorf("completed todos after the completion = %v, want [%s]", ids, id)
		}
		if ans := call(t, "POST", base+"todo/"+id+"/complete", `{"completed_on":"2017-06-13"}`); ans.status != 422 || ans.header.Get("Cairn-Position") != "" {
			t.Errorf("a rejected command = %d with Cairn-Position %q; want 422 and none", ans.status, ans.header.Get("Cairn-Position"))
		}
		for _, bad := range []string{"x", "-1", "1.5"} {
			if ans := call(t, "GET", base+"todos/outstanding", "", "Cairn-After", bad); ans.status != 400 || ans.body != "Bad Request: Cairn-After is invalid" {
				t.Errorf("Cairn-After: %s = %d %q, want 400", bad, ans.status, ans.body)
			}
		}

		// The history: the todo's events, in order.
		var events []struct {
			Position      int64     `json:"position"`
			Version       int64     `json:"version"`
			Type          string    `json:"type"`
			RecordedAt    time.Time `json:"recorded_at"`
			CorrelationID string    `json:"correlation_id"`
		}
		ans := call(t, "GET", base+"todo/"+strings.ToUpper(id)+"/history", "")
		if err := json.Unmarshal([]byte(ans.body), &events); ans.status != 200 || err != nil {
			t.Fatalf("GET history = %d %q: %v", ans.status, ans.body, err)
		}
		wantTypes := []string{"todo_added", "todo_amended", "todo_completed"}
		if len(events) < len(wantTypes) {
			t.Fatalf("history = %+v, want %v first", events, wantTypes)
		}
		for i, want := range wantTypes {
			e := events[i]
			if e.Type != want || e.Version != int64(i+1) || (i > 0 && e.Position <= events[i-1].Position) || e.RecordedAt.IsZero() || e.CorrelationID == "" {
				t.Errorf("history[%d] = %+v, want %s at version %d", i, e, want, i+1)
			}
		}
		if ans := call(t, "GET", base+"todo/"+todoID(999)+"/history", ""); ans.status != 404 {
			t.Errorf("history of a todo never added = %d %q, want 404", ans.status, ans.body)
		}
		if ans := call(t, "GET", base+"todo/42/history", ""); ans.status != 400 {
			t.Errorf("history of a bad ID = %d %q, want 400", ans.status, ans.body)
		}
		waitForPositions(t, base, func(ps []positionJSON) bool {
			return len(ps) == 4 && !slices.ContainsFunc(ps, func(p positionJSON) bool { return p.State != "running" || p.Lag != 0 })
		})
	})
}
