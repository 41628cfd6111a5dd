package processing_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// settle gives a processor that should not move time to move anyway: a
// witness processor catches up with the store (so the events are there to
// be read), then several pause checks pass.
func settle(t *testing.T, s *eventstore.Store, name string) {
	t.Helper()
	w := newProcessor(t, s, name, &recorder{}, processing.Options{ErrorHandler: processing.NoRetry{}})
	stop := testkit.RunInBackground(t, w)
	testkit.WaitFor(t, w, testkit.Head(t, s))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
}

// A paused processor handles nothing while paused, and everything after it
// is resumed, once, in order.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 200, 5, 10)
		rec := &recorder{}
		p := newProcessor(t, s, "paused", rec, processing.Options{BatchSize: 10, PauseCheckInterval: 10 * time.Millisecond, ErrorHandler: processing.NoRetry{}})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, testkit.Head(t, s))

		if err := p.Pause(t.Context()); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "state paused", func() bool { return p.Status().State == processing.Paused })
		if paused, err := s.Paused(t.Context(), "paused"); err != nil || !paused {
			t.Errorf("Paused() = %v, %v; want the flag recorded", paused, err)
		}
		handled, at := len(rec.positions()), p.Status().Position
		testkit.Fill(t, s, 100, 5, 10)
		settle(t, s, "witness")
		if n, pos := len(rec.positions()), p.Status().Position; n != handled || pos != at {
			t.Fatalf("while paused: handled %d events and moved to %d, want %d and %d", n, pos, handled, at)
		}
		if _, saved, err := s.LeaseHolder(t.Context(), "paused"); err != nil || saved != at {
			t.Fatalf("while paused: saved position %d (%v), want %d", saved, err, at)
		}

		if err := p.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		head := testkit.Head(t, s)
		testkit.WaitFor(t, p, head)
		if st := p.Status(); st.State != processing.Running || st.Paused {
			t.Errorf("after Resume: status %+v, want running, not paused", st)
		}
		if got, want := rec.positions(), positionsBetween(t, s, 0, head); !slices.Equal(got, want) {
			t.Errorf("handled %d events, want every one of %d once, in order", len(got), len(want))
		}
	})
}

// A pause interrupts the batch in flight: a projector's rolls back, and
// after the resume the projection is exactly what a clean run builds.
func TestPauseInterruptsBatch(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 3000, 20, 100)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{BatchSize: 100, ErrorHandler: processing.NoRetry{}},
			// 30 batches of 100 ms: the pause has most of 3 s to land
			// mid-run even on a busy machine, where on SQLite its write
			// of the pause flag waits for the batches' transactions.
			BatchDelay: 100 * time.Millisecond,
		})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head/4)
		if err := p.Pause(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Pause returns once the processor has stopped handling events.
		at := p.Status().Position
		if at >= head {
			t.Fatalf("the projector caught up (%d of %d) before the pause", at, head)
		}
		time.Sleep(150 * time.Millisecond)
		if pos := p.Status().Position; pos != at {
			t.Fatalf("position moved from %d to %d while paused", at, pos)
		}
		if err := p.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, p, head)
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db.Gorm, "accounts"), testkit.FoldAccounts(t, s, 0))
	})
}

// A pause or a resume recorded by another process (another store on the
// database, as the admin command) reaches a running processor, and a
// processor paused before it runs starts paused.
func TestPauseFromAnotherProcess(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		admin := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		testkit.Fill(t, s, 50, 5, 10)
		rec := &recorder{}
		opts := processing.Options{BatchSize: 10, PauseCheckInterval: 10 * time.Millisecond, ErrorHandler: processing.NoRetry{}}
		p := newProcessor(t, s, "remote", rec, opts)
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, testkit.Head(t, s))

		if err := admin.SetPaused(t.Context(), "remote", true); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "state paused", func() bool { return p.Status().State == processing.Paused })
		handled := len(rec.positions())
		testkit.Fill(t, s, 50, 5, 10)
		settle(t, s, "witness")
		if n := len(rec.positions()); n != handled {
			t.Fatalf("handled %d events while paused, want none", n-handled)
		}
		// Stopped and started again while paused: still paused.
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		p = newProcessor(t, s, "remote", rec, opts)
		testkit.RunInBackground(t, p)
		testkit.Eventually(t, 10*time.Second, "state paused after a restart", func() bool { return p.Status().State == processing.Paused })
		settle(t, s, "witness 2")
		if n := len(rec.positions()); n != handled {
			t.Fatalf("handled %d events while paused, want none", n-handled)
		}

		if err := admin.SetPaused(t.Context(), "remote", false); err != nil {
			t.Fatal(err)
		}
		head := testkit.Head(t, s)
		testkit.WaitFor(t, p, head)
		if got, want := rec.positions(), positionsBetween(t, s, 0, head); !slices.Equal(got, want) {
			t.Errorf("handled %d events, want every one of %d once, in order", len(got), len(want))
		}
	})
}
