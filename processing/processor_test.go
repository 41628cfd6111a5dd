package processing_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

var (
	_ processing.Store      = (*eventstore.Store)(nil)
	_ processing.TypedStore = (*eventstore.Store)(nil)
)

// TestRetryDelays checks the delays between attempts on the fake clock of
// a synctest bubble, with a real (in-memory) database: a handler failing
// on one event four times is retried after 10, 20, 40 and 40ms; after a
// success the backoff starts again at 10ms for the next failing event.
func TestRetryDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB()
		defer sqlDB.Close()
		s := testkit.DomainStore(t, db)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3}})
		failures := map[int64]int{evs[1].Position: 4, evs[2].Position: 2}
		var mu sync.Mutex
		rec := &recorder{fail: func(e event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if failures[e.Position] > 0 {
				failures[e.Position]--
				return errors.New("not yet")
			}
			return nil
		}}
		var got []processing.Failure
		p := newProcessor(t, s, "delays", rec, processing.Options{
			BatchSize:    1,
			ErrorHandler: processing.ExponentialBackoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond},
			OnError:      func(f processing.Failure) { got = append(got, f) },
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		if err := p.WaitFor(t.Context(), evs[2].Position); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}

		// Attempts at event 1 (once), event 2 (5 times), event 3 (3 times).
		var gaps []time.Duration
		for i := 1; i < len(rec.times); i++ {
			gaps = append(gaps, rec.times[i].Sub(rec.times[i-1]))
		}
		ms := time.Millisecond
		want := []time.Duration{0, 10 * ms, 20 * ms, 40 * ms, 40 * ms, 0, 10 * ms, 20 * ms}
		if !slices.Equal(gaps, want) {
			t.Errorf("time between attempts = %v, want %v", gaps, want)
		}
		var attempts []int
		for _, f := range got {
			attempts = append(attempts, f.Attempt)
			if !f.Retry || f.Delay != 10*ms<<min(f.Attempt-1, 2) {
				t.Errorf("failure %+v: want a retry after %v", f, 10*ms<<min(f.Attempt-1, 2))
			}
		}
		if want := []int{1, 2, 3, 4, 1, 2}; !slices.Equal(attempts, want) {
			t.Errorf("attempts = %v, want %v", attempts, want)
		}
		if want := []int64{evs[0].Position, evs[1].Position, evs[2].Position}; !slices.Equal(rec.positions(), want) {
			t.Errorf("handled %v, want %v", rec.positions(), want)
		}
	})
}

func TestPositionPassesIgnoredTypes(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		dep := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}})
		rec := &recorder{types: []string{"deposited"}}
		p := newProcessor(t, s, "deposits", rec, processing.Options{})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, dep[0].Position)
		// Only events of another type: the position still moves to them.
		notes := testkit.MustAppend(t, s, "notes", event.Any, []any{testkit.Noted{Text: "a"}, testkit.Noted{Text: "b"}})
		testkit.WaitFor(t, p, notes[1].Position)
		if got := rec.positions(); !slices.Equal(got, []int64{dep[0].Position}) {
			t.Errorf("handled %v, want only the deposit at %d", got, dep[0].Position)
		}
		var saved int64
		if err := db.Gorm.Raw(`SELECT position FROM cairn_processor_positions WHERE name = 'deposits'`).Row().Scan(&saved); err != nil {
			t.Fatal(err)
		}
		if saved != notes[1].Position {
			t.Errorf("saved position = %d, want %d", saved, notes[1].Position)
		}
		if st := p.Status(); st.State != processing.Running || st.Position != notes[1].Position {
			t.Errorf("Status() = %+v, want running at %d", st, notes[1].Position)
		}
	})
}

func TestNoRetryAndPanic(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		h := &panicker{at: evs[1].Position}
		p := newProcessor(t, s, "panicky", h, processing.Options{ErrorHandler: processing.NoRetry{}, BatchSize: 1})
		err := p.Run(t.Context())
		pe, ok := errors.AsType[*processing.PanicError](err)
		if !ok || pe.Value != "boom" || len(pe.Stack) == 0 {
			t.Fatalf("Run() = %v, want a PanicError with a stack", err)
		}
		st := p.Status()
		if st.State != processing.Failed || st.Position != evs[0].Position || st.Attempts != 1 || !errors.Is(st.LastError, pe) {
			t.Errorf("Status() = %+v, want failed at %d after 1 attempt", st, evs[0].Position)
		}
	})
}

// panicker panics on the event at position at.
type panicker struct {
	at int64
}

func (*panicker) Types() []string { return nil }

func (h *panicker) HandleBatch(ctx context.Context, b event.Batch, cp processing.Checkpoint) (int64, error) {
	for _, e := range b.Events {
		if e.Position == h.at {
			panic("boom")
		}
	}
	return b.Through, cp.Save(ctx, b.Through)
}

func TestFencedAfterReset(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		first := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}})
		running := newProcessor(t, s, "fenced", &recorder{}, processing.Options{})
		done := make(chan error, 1)
		go func() { done <- running.Run(t.Context()) }()
		testkit.WaitFor(t, running, first[0].Position)

		// Another instance (another process, say) resets the position.
		other := newProcessor(t, s, "fenced", &recorder{}, processing.Options{})
		if err := other.Reset(t.Context()); err != nil {
			t.Fatalf("Reset() = %v", err)
		}
		testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 2}})
		if err := <-done; !errors.Is(err, processing.ErrFenced) {
			t.Fatalf("Run() = %v, want ErrFenced", err)
		}
		if st := running.Status(); st.State != processing.Failed {
			t.Errorf("Status() = %+v, want failed", st)
		}
		var pos int64
		if err := db.Gorm.Raw(`SELECT position FROM cairn_processor_positions WHERE name = 'fenced'`).Row().Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos != 0 {
			t.Errorf("position = %d after the reset, want 0 (the fenced run wrote nothing)", pos)
		}
	})
}

func TestRunTwice(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	p := newProcessor(t, s, "twice", &recorder{}, processing.Options{})
	testkit.RunInBackground(t, p)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for p.Status().State != processing.Running {
		if ctx.Err() != nil {
			t.Fatal("processor did not start")
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Run(t.Context()); !errors.Is(err, processing.ErrRunning) {
		t.Errorf("second Run() = %v, want ErrRunning", err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	for _, tc := range []struct {
		name string
		opts processing.Options
	}{
		{"", processing.Options{}},
		{"a\x00b", processing.Options{}},
		{"ok", processing.Options{BatchSize: -1}},
	} {
		if _, err := processing.New(s, tc.name, &recorder{}, tc.opts); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("New(%q, %+v) = %v, want ErrInvalid", tc.name, tc.opts, err)
		}
	}
}

func TestMigrateConcurrently(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		var wg sync.WaitGroup
		for range 4 {
			g, err := testdb.Open(kind, db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if s, err := g.DB(); err == nil {
					s.Close()
				}
			})
			s, err := eventstore.New(g, testkit.NewRegistry(), eventstore.Options{Logger: testdb.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			p, err := processing.New(s, "m", &recorder{}, processing.Options{})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for range 2 {
					if err := p.Migrate(t.Context()); err != nil {
						t.Errorf("Migrate() = %v, want nil", err)
					}
				}
			})
		}
		wg.Wait()
	})
}
