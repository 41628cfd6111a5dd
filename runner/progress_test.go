package runner_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// records is a slog.Handler that keeps the records it handles.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h } // attrs not needed here
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

func (h *records) withMessage(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

func attrs(r slog.Record) map[string]slog.Value {
	m := make(map[string]slog.Value)
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value
		return true
	})
	return m
}

// TestProgress checks, on the fake clock of a synctest bubble, that a
// projector catching up for about 20 seconds is reported as catching up
// with its progress logged every 5 seconds, then as live.
func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB()
		defer sqlDB.Close()
		s := testkit.DomainStore(t, db)
		head := testkit.Fill(t, s, 2000, 10, 100)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{BatchSize: 100, Logger: testdb.Logger(t)},
			BatchDelay: time.Second,
		})
		logs := &records{}
		r, err := runner.New(s, runner.Options{Logger: slog.New(logs), ProgressInterval: 5 * time.Second}, p)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()

		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		st := r.Status(t.Context()).Processors[0]
		if st.State != runner.CatchingUp || st.Position == 0 || st.Lag != head-st.Position || st.Rate <= 0 {
			t.Errorf("after 3.5s: status %+v, want catching up, with a lag and a rate", st)
		}
		if err := p.WaitFor(t.Context(), head); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // a sample or so
		synctest.Wait()
		if st := r.Status(t.Context()).Processors[0]; st.State != runner.Live || st.Lag != 0 {
			t.Errorf("at the head: status %+v, want live", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run() = %v", err)
		}

		progress := logs.withMessage("event processor catching up")
		if n := len(progress); n < 3 || n > 4 {
			t.Errorf("%d progress messages over a catch-up of about 20s, want 3 or 4 (one per 5s)", n)
		}
		for i, rec := range progress {
			a := attrs(rec)
			for _, k := range []string{"processor", "kind", "position", "head", "remaining", "events_per_second", "eta"} {
				if _, ok := a[k]; !ok {
					t.Errorf("progress message %d has no %q: %v", i, k, a)
				}
			}
			if a["head"].Int64() != head || a["remaining"].Int64() != head-a["position"].Int64() {
				t.Errorf("progress message %d: %v, want head %d and remaining = head - position", i, a, head)
			}
			if i > 0 {
				if gap := rec.Time.Sub(progress[i-1].Time); gap < 5*time.Second {
					t.Errorf("progress messages %d and %d %v apart, want at least 5s", i-1, i, gap)
				}
			}
		}
		if n := len(logs.withMessage("event processor caught up")); n != 1 {
			t.Errorf("%d caught-up messages, want 1", n)
		}
	})
}
