package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/reactor"
	"github.com/cairnhq/cairn/runner"
)

var (
	_ runner.Processor = (*projector.Projector)(nil)
	_ runner.Processor = (*reactor.Reactor)(nil)
	_ runner.Processor = (*processing.Processor)(nil)
	_ runner.Store     = (*eventstore.Store)(nil)
)

var errBroken = errors.New("broken handler")

// brokenProjector fails at every deposit.
func brokenProjector(t testing.TB, s *eventstore.Store, name string, eh processing.ErrorHandler) *projector.Projector {
	t.Helper()
	p, err := projector.New(s, name, projector.Options{Processing: processing.Options{Logger: testdb.Logger(t), ErrorHandler: eh}})
	if err != nil {
		t.Fatal(err)
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited) error { return errBroken })
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return p
}

func processorStatus(t testing.TB, st runner.Status, name string) runner.ProcessorStatus {
	t.Helper()
	for _, ps := range st.Processors {
		if ps.Name == name {
			return ps
		}
	}
	t.Fatalf("status has no processor %q: %+v", name, st)
	return runner.ProcessorStatus{}
}

// TestIsolation runs a working projector next to one that retries a
// failing event forever and one that gives up at once: the working one
// finishes its backlog, the failing ones show their attempts and errors,
// and Run returns the error of the one that gave up.
func TestIsolation(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 3000, 20, 100)
		opts := processing.Options{Logger: testdb.Logger(t), ErrorHandler: processing.NoRetry{}}
		working := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: opts})
		retrying := brokenProjector(t, s, "retrying", processing.ConstantRetry{Delay: 10 * time.Millisecond})
		failing := brokenProjector(t, s, "failing", processing.NoRetry{})
		r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t)}, retrying, working, failing)
		if err != nil {
			t.Fatal(err)
		}
		stop := testkit.RunInBackground(t, r)

		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		if err := working.WaitFor(ctx, head); err != nil {
			t.Fatalf("working projector: WaitFor(%d) = %v; status %+v", head, err, r.Status(t.Context()))
		}
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), testkit.FoldAccounts(t, s, head))
		testkit.Eventually(t, 30*time.Second, "the retrying projector to fail 3 times", func() bool {
			return processorStatus(t, r.Status(t.Context()), "retrying").Attempts >= 3
		})

		st := r.Status(t.Context())
		if st.Head != head || st.Owner != r.Owner() || st.HeadError != nil {
			t.Errorf("Status() = head %d, owner %q, head error %v; want %d, %q, nil", st.Head, st.Owner, st.HeadError, head, r.Owner())
		}
		if w := processorStatus(t, st, "accounts"); w.State != runner.Live || w.Position != head || w.Lag != 0 || w.Attempts != 0 || w.LastError != nil || w.Kind != "projector" || w.Owner != r.Owner() {
			t.Errorf("working projector: %+v, want live at %d, no errors", w, head)
		}
		rt := processorStatus(t, st, "retrying")
		if (rt.State != runner.Retrying && rt.State != runner.CatchingUp) || rt.Attempts < 3 || !errors.Is(rt.LastError, errBroken) || rt.Lag != head {
			t.Errorf("retrying projector: %+v, want retrying, 3+ attempts, %v, lag %d", rt, errBroken, head)
		}
		f := processorStatus(t, st, "failing")
		if f.State != runner.Failed || f.Attempts != 1 || !errors.Is(f.LastError, errBroken) || f.Position != 0 {
			t.Errorf("failing projector: %+v, want failed after 1 attempt with %v", f, errBroken)
		}

		err = stop()
		if !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "failing") || strings.Contains(err.Error(), "retrying") {
			t.Errorf("Run() = %v, want the error of the failing projector only", err)
		}
		st = r.Status(t.Context())
		if w := processorStatus(t, st, "accounts"); w.State != runner.Stopped {
			t.Errorf("after Run: working projector %+v, want stopped", w)
		}
		if l := readLease(t, db.Gorm, "accounts"); l.Owner != "" {
			t.Errorf("after Run: lease of accounts held by %q, want released", l.Owner)
		}
	})
}

// TestAllFailed checks that Run returns by itself when every processor
// has failed.
func TestAllFailed(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	testkit.Fill(t, s, 10, 1, 10)
	r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t)}, brokenProjector(t, s, "a", processing.NoRetry{}), brokenProjector(t, s, "b", processing.NoRetry{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("Run did not return when all processors had failed")
	}
	if !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "a") || !strings.Contains(err.Error(), "b") {
		t.Errorf("Run() = %v, want the errors of a and b", err)
	}
	if err := r.Run(t.Context()); !errors.Is(err, processing.ErrRunning) {
		t.Errorf("second Run() = %v, want ErrRunning", err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	a := brokenProjector(t, s, "a", nil)
	for name, fn := range map[string]func() (*runner.Runner, error){
		"nil store":       func() (*runner.Runner, error) { return runner.New(nil, runner.Options{}, a) },
		"duplicate names": func() (*runner.Runner, error) { return runner.New(s, runner.Options{}, a, a) },
		"nil processor":   func() (*runner.Runner, error) { return runner.New(s, runner.Options{}, nil) },
		"bad lease": func() (*runner.Runner, error) {
			return runner.New(s, runner.Options{Ownership: processing.Ownership{LeaseDuration: time.Second, HeartbeatInterval: 2 * time.Second}}, a)
		},
		"negative grace": func() (*runner.Runner, error) { return runner.New(s, runner.Options{GracePeriod: -1}, a) },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := fn(); !errors.Is(err, processing.ErrInvalid) {
				t.Errorf("New() = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestStatusHandler reads the status over HTTP.
func TestStatusHandler(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 50, 3, 10)
		working := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Logger: testdb.Logger(t)}})
		failing := brokenProjector(t, s, "failing", processing.NoRetry{})
		r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t)}, working, failing)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(r.Handler())
		defer srv.Close()

		get := func() (map[string]any, *http.Response) {
			t.Helper()
			res, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("decode status: %v", err)
			}
			return body, res
		}
		body, _ := get()
		procs := body["processors"].([]any)
		if st := procs[0].(map[string]any)["state"]; st != "starting" {
			t.Errorf("before Run: state %v, want starting", st)
		}

		testkit.RunInBackground(t, r)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		if err := working.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "the failing projector to fail", func() bool {
			return processorStatus(t, r.Status(t.Context()), "failing").State == runner.Failed
		})

		body, res := get()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET = %d %q, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if body["owner"] != r.Owner() || body["head"] != float64(head) || body["head_error"] != nil {
			t.Errorf("status %v: want owner %q, head %d, no head error", body, r.Owner(), head)
		}
		procs = body["processors"].([]any)
		if len(procs) != 2 {
			t.Fatalf("status has %d processors, want 2: %v", len(procs), body)
		}
		w := procs[0].(map[string]any)
		want := map[string]any{
			"name": "accounts", "kind": "projector", "state": "live", "owner": r.Owner(),
			"position": float64(head), "head": float64(head), "lag": float64(0),
			"attempts": float64(0), "last_error": nil,
		}
		for k, v := range want {
			if w[k] != v {
				t.Errorf("status of accounts: %s = %#v, want %#v", k, w[k], v)
			}
		}
		if _, ok := w["events_per_second"].(float64); !ok {
			t.Errorf("status of accounts: events_per_second = %#v, want a number", w["events_per_second"])
		}
		f := procs[1].(map[string]any)
		if f["name"] != "failing" || f["state"] != "failed" || f["attempts"] != float64(1) || f["lag"] != float64(head) {
			t.Errorf("status of failing: %v, want failed after 1 attempt, lag %d", f, head)
		}
		if msg, _ := f["last_error"].(string); !strings.Contains(msg, errBroken.Error()) {
			t.Errorf("status of failing: last_error = %#v, want %q", f["last_error"], errBroken)
		}

		res, err = http.Post(srv.URL, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST = %d, want 405", res.StatusCode)
		}
	})
}
