package runner_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// TestMetrics: the runner's gauges show a paused projector's lag, in
// events and in seconds of recorded time, rising as events are appended,
// its state, and the lag back at 0 once it is resumed and has caught up.
func TestMetrics(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		// Each commit is recorded a minute after the one before.
		var mu sync.Mutex
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		now := func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Minute)
			return clock
		}
		s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{Now: now, PollInterval: 50 * time.Millisecond})
		m := testkit.NewMetrics(t)
		name := "accounts"
		p := testkit.AccountsProjector(t, s, name, "accounts", testkit.AccountsOptions{
			Processing: processing.Options{Logger: testdb.Logger(t), PauseCheckInterval: 10 * time.Millisecond},
		})
		r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t), MeterProvider: m.Provider}, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Collect(t); len(got["cairn.processor.lag"]) != 0 {
			t.Errorf("before Run: cairn.processor.lag = %+v, want no points", got["cairn.processor.lag"])
		}
		stop := testkit.RunInBackground(t, r)
		of := []string{"cairn.processor.name", name, "cairn.processor.kind", "projector"}
		gauge := func(got testkit.Snapshot, metric string) float64 {
			t.Helper()
			ps := got.Matching(metric, of...)
			if len(ps) != 1 {
				t.Fatalf("%s = %+v, want one point", metric, ps)
			}
			return ps[0].Value
		}
		state := func(got testkit.Snapshot) runner.State {
			t.Helper()
			var in []runner.State
			for _, pt := range got.Matching("cairn.processor.state", of...) {
				if pt.Value == 1 {
					in = append(in, runner.State(pt.Attrs["cairn.processor.state"]))
				}
			}
			if len(in) != 1 {
				t.Fatalf("cairn.processor.state = 1 for %v, want one state", in)
			}
			return in[0]
		}

		first := testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
		testkit.WaitFor(t, p, first[0].Position)
		if err := r.Pause(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		var lags, durations []float64
		for i := range 3 {
			last := testkit.MustAppend(t, s, "acct-1", event.Exact(int64(i+1)), []any{testkit.Deposited{Amount: 1}})
			got := m.Collect(t)
			if st := state(got); st != runner.Paused {
				t.Errorf("state = %s, want %s", st, runner.Paused)
			}
			if pos := gauge(got, "cairn.processor.position"); pos != float64(first[0].Position) {
				t.Errorf("position = %v while paused, want %d", pos, first[0].Position)
			}
			if head := gauge(got, "cairn.processor.head"); head != float64(last[0].Position) {
				t.Errorf("head = %v, want %d", head, last[0].Position)
			}
			lags = append(lags, gauge(got, "cairn.processor.lag"))
			durations = append(durations, gauge(got, "cairn.processor.lag.duration"))
		}
		for i := range lags {
			if lags[i] != float64(i+1) || durations[i] != float64(60*(i+1)) {
				t.Errorf("while paused, after %d appends: lag %v events, %vs; want %d, %d", i+1, lags[i], durations[i], i+1, 60*(i+1))
			}
		}

		if err := r.Resume(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, p, testkit.Head(t, s))
		got := m.Collect(t)
		if lag, d := gauge(got, "cairn.processor.lag"), gauge(got, "cairn.processor.lag.duration"); lag != 0 || d != 0 {
			t.Errorf("caught up: lag %v events, %vs; want 0, 0", lag, d)
		}
		if st := state(got); st != runner.Live && st != runner.CatchingUp {
			t.Errorf("caught up: state %s, want live (or catching_up until the sampler looks)", st)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run() = %v", err)
		}
		if got := m.Collect(t); len(got["cairn.processor.lag"]) != 0 {
			t.Errorf("after Run: cairn.processor.lag = %+v, want no points", got["cairn.processor.lag"])
		}
	})
}
