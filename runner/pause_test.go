package runner_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// A processor paused through the runner's status endpoint handles nothing
// while paused, keeps its lease, shows as paused, and handles everything
// after it is resumed.
func TestPauseOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 200, 5, 20)
		name := "accounts/main" // a name that needs escaping in a path
		p := testkit.AccountsProjector(t, s, name, "accounts", testkit.AccountsOptions{
			Processing: processing.Options{Logger: testdb.Logger(t), PauseCheckInterval: 10 * time.Millisecond},
		})
		lease := 300 * time.Millisecond
		r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t), Ownership: processing.Ownership{LeaseDuration: lease}}, p)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(r.Handler())
		defer srv.Close()
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, p, testkit.Head(t, s))

		post := func(path string) (runner.ProcessorStatus, int) {
			t.Helper()
			res, err := http.Post(srv.URL+path, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var st runner.ProcessorStatus
			if res.StatusCode == http.StatusOK {
				var body map[string]any
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
					t.Fatal(err)
				}
				st.Name, _ = body["name"].(string)
				st.State = runner.State(body["state"].(string))
				st.Paused, _ = body["paused"].(bool)
			}
			return st, res.StatusCode
		}
		escaped := "/" + url.PathEscape(name)
		if st, code := post(escaped + "/pause"); code != http.StatusOK || st.Name != name || st.State != runner.Paused || !st.Paused {
			t.Fatalf("POST %s/pause = %d %+v, want 200 and the processor paused", escaped, code, st)
		}
		at := p.Status().Position
		testkit.Fill(t, s, 100, 5, 20)
		time.Sleep(2 * lease) // the lease would lapse if it were not renewed
		if pos := p.Status().Position; pos != at {
			t.Fatalf("position moved from %d to %d while paused", at, pos)
		}
		if got := readLease(t, db.Gorm, name); got.Owner != r.Owner() || got.Position != at {
			t.Errorf("while paused: lease row %+v, want owner %q at %d", got, r.Owner(), at)
		}
		if got := r.Status(t.Context()).Processors[0]; got.State != runner.Paused || !got.Paused {
			t.Errorf("Status() = %+v, want state paused", got)
		}

		if _, code := post("/nobody/pause"); code != http.StatusNotFound {
			t.Errorf("POST /nobody/pause = %d, want 404", code)
		}
		if err := r.Pause(t.Context(), "nobody"); !errors.Is(err, runner.ErrUnknownProcessor) {
			t.Errorf("Pause(nobody) = %v, want ErrUnknownProcessor", err)
		}

		if st, code := post(escaped + "/resume"); code != http.StatusOK || st.Paused {
			t.Fatalf("POST %s/resume = %d %+v, want 200 and the processor not paused", escaped, code, st)
		}
		head := testkit.Head(t, s)
		testkit.WaitFor(t, p, head)
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), testkit.FoldAccounts(t, s, 0))
	})
}
