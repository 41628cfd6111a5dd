package runner_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// TestRebuildProgress checks, on the fake clock of a synctest bubble,
// that the rebuild of a versioned projector (about 30 seconds) shows in
// the status — target version, position, head, rate, time to the swap,
// in Go and in JSON — and in progress messages every 5 seconds (about 27
// seconds of building: 4 or 5 of them, 3 if the ticks fall badly), and
// that it is gone once swapped in.
func TestRebuildProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB()
		defer sqlDB.Close()
		s := testkit.DomainStore(t, db)
		head := testkit.Fill(t, s, 3000, 10, 100)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{BatchSize: 100, Logger: testdb.Logger(t)},
			BatchDelay: time.Second,
			Version:    4, DropAfter: -1, PollInterval: 100 * time.Millisecond,
		})
		logs := &records{}
		r, err := runner.New(s, runner.Options{Logger: slog.New(logs), ProgressInterval: 5 * time.Second}, p)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		if err := p.WaitFor(t.Context(), head); err != nil {
			t.Fatal(err)
		}
		if st := r.Status(t.Context()).Processors[0]; st.Rebuild != nil {
			t.Errorf("before the rebuild: %+v, want no rebuild", st.Rebuild)
		}

		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		st := r.Status(t.Context()).Processors[0]
		rb := st.Rebuild
		if rb == nil || rb.Version != 4 || rb.Label != "v4r1" || rb.Processor != "accounts@v4r1" || rb.State != runner.CatchingUp ||
			rb.Position == 0 || rb.Head != head || rb.Remaining != head-rb.Position || rb.Rate <= 0 || rb.ETA <= 0 || rb.Owner != r.Owner() {
			t.Fatalf("3.5s into the rebuild: rebuild status %+v, want v4r1 built here, with a position, rate and ETA", rb)
		}
		if st.State != runner.Live || st.Position != head {
			t.Errorf("3.5s into the rebuild: the active version %+v, want it live at %d", st, head)
		}
		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var js struct {
			Rebuild map[string]any `json:"rebuild"`
		}
		if err := json.Unmarshal(data, &js); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"version", "label", "processor", "state", "owner", "position", "head", "remaining", "events_per_second", "eta_seconds", "attempts", "last_error"} {
			if _, ok := js.Rebuild[k]; !ok {
				t.Errorf("JSON status %s: rebuild has no %q", data, k)
			}
		}
		if eta, _ := js.Rebuild["eta_seconds"].(float64); eta <= 0 {
			t.Errorf("JSON status %s: want a positive eta_seconds", data)
		}

		// Until the swap.
		for {
			vs, err := p.Versions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if vs.Active.Label == "v4r1" {
				break
			}
			time.Sleep(time.Second)
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if st := r.Status(t.Context()).Processors[0]; st.Rebuild != nil || st.State != runner.Live {
			t.Errorf("after the swap: %+v (rebuild %+v), want live and no rebuild", st, st.Rebuild)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run() = %v", err)
		}

		progress := logs.withMessage("projector rebuilding beside the active version")
		if n := len(progress); n < 3 || n > 5 {
			var at []string
			for _, rec := range progress {
				at = append(at, rec.Time.Format("15:04:05"))
			}
			t.Errorf("%d rebuild progress messages (at %v) over a build of about 27s, want 3 to 5 (one per 5s)", n, at)
		}
		for i, rec := range progress {
			a := attrs(rec)
			for _, k := range []string{"processor", "builder", "version", "label", "position", "head", "remaining", "events_per_second", "eta"} {
				if _, ok := a[k]; !ok {
					t.Errorf("progress message %d has no %q: %v", i, k, a)
				}
			}
			if i > 0 {
				if gap := rec.Time.Sub(progress[i-1].Time); gap < 5*time.Second {
					t.Errorf("progress messages %d and %d %v apart, want at least 5s", i-1, i, gap)
				}
			}
		}
	})
}
