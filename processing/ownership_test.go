package processing_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// startOwned runs p under o until the test ends and returns a function
// that stops it and returns RunOwned's result.
func startOwned(t testing.TB, p *processing.Processor, o processing.Ownership) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.RunOwned(ctx, o) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitState(t testing.TB, p *processing.Processor, want processing.State, owner string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for st := p.Status(); st.State != want || st.Owner != owner; st = p.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want %v with owner %q", st, want, owner)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnedHandover runs two instances of one processor (as two processes
// would) under a lease: one runs, the other stands by, and takes over at
// once when the first stops; no event is handled by both.
func TestOwnedHandover(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		own := func(owner string) processing.Ownership {
			return processing.Ownership{Owner: owner, LeaseDuration: time.Minute, PollInterval: 20 * time.Millisecond}
		}
		recA := &recorder{}
		a := newProcessor(t, s, "shared", recA, processing.Options{})
		stopA := startOwned(t, a, own("A"))
		testkit.WaitFor(t, a, evs[1].Position)
		waitState(t, a, processing.Running, "A")

		recB := &recorder{}
		b := newProcessor(t, s, "shared", recB, processing.Options{})
		startOwned(t, b, own("B"))
		waitState(t, b, processing.Standby, "A")
		more := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 3}})
		testkit.WaitFor(t, a, more[0].Position)
		if err := b.WaitFor(t.Context(), more[0].Position); err != nil { // B sees A's progress
			t.Fatal(err)
		}
		if err := stopA(); err != nil {
			t.Fatalf("RunOwned() = %v, want nil", err)
		}
		if st := a.Status(); st.State != processing.Stopped {
			t.Errorf("A: status %+v, want stopped", st)
		}
		waitState(t, b, processing.Running, "B")
		last := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 4}})
		testkit.WaitFor(t, b, last[0].Position)
		if got, want := recA.positions(), []int64{evs[0].Position, evs[1].Position, more[0].Position}; !slices.Equal(got, want) {
			t.Errorf("A handled %v, want %v", got, want)
		}
		if got, want := recB.positions(), []int64{last[0].Position}; !slices.Equal(got, want) {
			t.Errorf("B handled %v, want %v", got, want)
		}
	})
}

// TestOwnedTakeoverFences checks that an expired lease is taken over, and
// that the new owner's epoch fences the old one: the old owner's batch in
// flight does not commit, and it stands by.
func TestOwnedTakeoverFences(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		// A holds its second batch until B has taken over and committed
		// it: a stand-in for a paused process.
		release := make(chan struct{})
		recA := &recorder{fail: func(e event.Event) error {
			if e.Position == evs[1].Position {
				<-release
			}
			return nil
		}}
		a := newProcessor(t, s, "shared", recA, processing.Options{BatchSize: 1})
		startOwned(t, a, processing.Ownership{Owner: "A", LeaseDuration: time.Hour, HeartbeatInterval: 50 * time.Minute})
		testkit.WaitFor(t, a, evs[0].Position)

		recB := &recorder{}
		b := newProcessor(t, s, "shared", recB, processing.Options{})
		startOwned(t, b, processing.Ownership{Owner: "B", LeaseDuration: time.Minute, PollInterval: 20 * time.Millisecond})
		waitState(t, b, processing.Standby, "A")
		// A's lease runs out (as it would if A stopped renewing it).
		if err := db.Gorm.Exec(`UPDATE cairn_processor_positions SET lease_until = 0 WHERE name = 'shared'`).Error; err != nil {
			t.Fatal(err)
		}
		waitState(t, b, processing.Running, "B")
		testkit.WaitFor(t, b, evs[1].Position)
		close(release)
		waitState(t, a, processing.Standby, "B")

		if got, want := recB.positions(), []int64{evs[1].Position}; !slices.Equal(got, want) {
			t.Errorf("B handled %v, want %v", got, want)
		}
		var pos int64
		if err := db.Gorm.Raw(`SELECT position FROM cairn_processor_positions WHERE name = 'shared'`).Row().Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos != evs[1].Position {
			t.Errorf("saved position %d, want %d", pos, evs[1].Position)
		}
		if st := a.Status(); st.LastError != nil || st.Attempts != 0 {
			t.Errorf("A: status %+v: losing the lease is not a failure", st)
		}
	})
}

// TestOwnedReset checks that a reset fences the owner, which takes its
// lease again and starts over.
func TestOwnedReset(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		rec := &recorder{}
		p := newProcessor(t, s, "shared", rec, processing.Options{})
		startOwned(t, p, processing.Ownership{Owner: "A", LeaseDuration: time.Second, PollInterval: 20 * time.Millisecond})
		testkit.WaitFor(t, p, evs[1].Position)
		if err := p.Reset(t.Context()); !errors.Is(err, processing.ErrRunning) {
			t.Fatalf("Reset() while running = %v, want ErrRunning", err)
		}
		other := newProcessor(t, s, "shared", &recorder{}, processing.Options{})
		if err := other.Reset(t.Context()); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(rec.positions()) < 4 {
			if time.Now().After(deadline) {
				t.Fatalf("handled %v, want the events again after the reset", rec.positions())
			}
			time.Sleep(10 * time.Millisecond)
		}
		want := []int64{evs[0].Position, evs[1].Position, evs[0].Position, evs[1].Position}
		if got := rec.positions(); !slices.Equal(got, want) {
			t.Errorf("handled %v, want %v", got, want)
		}
		waitState(t, p, processing.Running, "A")
	})
}

func TestOwnershipValidate(t *testing.T) {
	for name, o := range map[string]processing.Ownership{
		"heartbeat not shorter": {LeaseDuration: time.Second, HeartbeatInterval: time.Second},
		"negative":              {PollInterval: -1},
		"sub-millisecond":       {LeaseDuration: time.Microsecond},
	} {
		if err := o.Validate(); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid", name, err)
		}
	}
	if err := (processing.Ownership{}).Validate(); err != nil {
		t.Errorf("zero Ownership: Validate() = %v, want nil", err)
	}
}

// TestOwnedFailureWinsOverStop checks that an owned run whose error
// handler gives up returns that failure even when its context ends right
// after (here: from the OnError callback, before the lease is released).
// It used to return nil, and a runner lost the failing processor's error.
func TestOwnedFailureWinsOverStop(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		testkit.MustAppend(t, s, "a-1", event.Any, []any{testkit.Deposited{Amount: 1}})
		errPoison := errors.New("poison")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rec := &recorder{fail: func(event.Event) error { return errPoison }}
		p := newProcessor(t, s, "failing", rec, processing.Options{
			ErrorHandler: processing.NoRetry{},
			OnError:      func(processing.Failure) { cancel() },
		})
		err := p.RunOwned(ctx, processing.Ownership{Owner: "me"})
		if !errors.Is(err, errPoison) {
			t.Fatalf("RunOwned() = %v, want the handler's error %v", err, errPoison)
		}
		if st := p.Status(); st.State != processing.Failed {
			t.Errorf("Status() = %+v, want failed", st)
		}
	})
}
