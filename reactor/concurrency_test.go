package reactor_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// orderLog is what a concurrent test reactor saw: per stream, the
// versions of the events it handled (successfully), in the order it
// handled them, and how many handlers ran at once.
type orderLog struct {
	mu       sync.Mutex
	versions map[string][]int64
	attempts map[int64]int // position → attempts
	inFlight int
	maxIn    int
}

func newOrderLog() *orderLog {
	return &orderLog{versions: make(map[string][]int64), attempts: make(map[int64]int)}
}

// enter counts a handler in, and its attempt at e.
func (l *orderLog) enter(e event.Event) (attempt int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight++
	l.maxIn = max(l.maxIn, l.inFlight)
	l.attempts[e.Position]++
	return l.attempts[e.Position]
}

// leave counts a handler out, recording e as handled when err is nil.
func (l *orderLog) leave(e event.Event, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if err == nil {
		l.versions[e.StreamID] = append(l.versions[e.StreamID], e.Version)
	}
}

func (l *orderLog) snapshot() (map[string][]int64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]int64, len(l.versions))
	for s, v := range l.versions {
		out[s] = slices.Clone(v)
	}
	return out, l.maxIn
}

// concurrentReactor is a reactor over deposits and withdrawals that
// records what it handles in l, emits a receipt for each deposit, sleeps
// up to a millisecond (so that streams interleave), and fails as fail
// says (nil: never) for the attempt-th attempt at an event.
func concurrentReactor(t testing.TB, s reactor.Store, name string, opts processing.Options, l *orderLog, fail func(e event.Event, attempt int) error) *reactor.Reactor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testdb.Logger(t)
	}
	r, err := reactor.New(s, name, reactor.Options{Processing: opts})
	if err != nil {
		t.Fatalf("reactor.New() = %v, want nil", err)
	}
	handle := func(ctx context.Context, e event.Event, emit func() error) (err error) {
		attempt := l.enter(e)
		defer func() { l.leave(e, err) }()
		time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond))))
		if fail != nil {
			if err := fail(e, attempt); err != nil {
				return err
			}
		}
		return emit()
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		return handle(ctx, e, func() error {
			_, err := emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued(d))
			return err
		})
	})
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Withdrawn, emit *reactor.Emitter) error {
		return handle(ctx, e, func() error { return nil })
	})
	if err := r.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return r
}

// wantVersions reads, per stream, the versions of the deposits and
// withdrawals up to through.
func wantVersions(t testing.TB, s *eventstore.Store, through int64) map[string][]int64 {
	t.Helper()
	want := make(map[string][]int64)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position > through {
			break
		}
		switch e.Data.(type) {
		case testkit.Deposited, testkit.Withdrawn:
			want[e.StreamID] = append(want[e.StreamID], e.Version)
		}
	}
	return want
}

// checkVersions checks that each stream's versions seen are want's, in
// order: strictly increasing, none missing, none repeated.
func checkVersions(t testing.TB, got, want map[string][]int64) {
	t.Helper()
	for s, w := range want {
		if g := got[s]; !slices.Equal(g, w) {
			t.Errorf("stream %q: handled versions %v, want %v", s, g, w)
		}
	}
	for s, g := range got {
		if _, ok := want[s]; !ok {
			t.Errorf("stream %q: handled versions %v, want none", s, g)
		}
	}
}

// TestConcurrencyOverlaps: with Concurrency 8, handlers of 8 streams run
// at the same time — each waits at a barrier that opens only once 8 are
// in — and never more than 8. A reactor that handles one event at a time
// never opens the barrier.
func TestConcurrencyOverlaps(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		var last int64
		for i := range 16 {
			evs := testkit.MustAppend(t, s, fmt.Sprintf("acct-%d", i), event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
			last = evs[1].Position
		}
		const n = 8
		var in atomic.Int64
		opened := make(chan struct{})
		var once sync.Once
		l := newOrderLog()
		r := concurrentReactor(t, s, "barrier", processing.Options{Concurrency: n, ErrorHandler: processing.NoRetry{}}, l,
			func(e event.Event, _ int) error {
				if in.Add(1) >= n {
					once.Do(func() { close(opened) })
				}
				select {
				case <-opened:
					return nil
				case <-time.After(time.Minute):
					return errors.New("barrier: fewer than 8 handlers ran at once for a minute")
				}
			})
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, last)
		got, maxIn := l.snapshot()
		if maxIn != n {
			t.Errorf("at most %d handlers ran at once, want %d", maxIn, n)
		}
		checkVersions(t, got, wantVersions(t, s, last))
		checkReceipts(t, s)
	})
}

// TestConcurrencyOrderWithRetries: under Concurrency 32, with failures
// injected (the first attempt at every fifth event fails, and the first
// two at every eleventh), each stream's events are handled in order, each
// once, none missing; every deposit has one receipt, and the position
// reaches the head.
func TestConcurrencyOrderWithRetries(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		last := testkit.Fill(t, s, 2_000, 50, 3)
		l := newOrderLog()
		var failures atomic.Int64
		r := concurrentReactor(t, s, "ordered", processing.Options{
			Concurrency: 32, BatchSize: 100,
			ErrorHandler: processing.ConstantRetry{Delay: 5 * time.Millisecond, MaxAttempts: 5},
			OnError:      func(processing.Failure) { failures.Add(1) },
		}, l, func(e event.Event, attempt int) error {
			switch {
			case e.Position%11 == 0 && attempt <= 2, e.Position%5 == 0 && attempt == 1:
				return fmt.Errorf("injected failure %d", attempt)
			}
			return nil
		})
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, last)
		got, maxIn := l.snapshot()
		checkVersions(t, got, wantVersions(t, s, last))
		checkReceipts(t, s)
		if failures.Load() == 0 {
			t.Error("no failure was injected")
		}
		if maxIn < 2 {
			t.Errorf("at most %d handlers ran at once, want several", maxIn)
		}
		if st := r.Status(); st.State != processing.Running || st.Attempts != 0 {
			t.Errorf("status %+v, want running with no attempts", st)
		}
	})
}

// TestConcurrencyOrderWithParking: under Concurrency 32 with Park, the
// events of three streams fail for good at some version: each is parked
// and its stream's later events are parked behind it, never handled; the
// other streams are handled in full, in order, and the position reaches
// the head.
func TestConcurrencyOrderWithParking(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		last := testkit.Fill(t, s, 2_000, 50, 3)
		poison := map[string]int64{"acct-3": 4, "acct-17": 20, "acct-40": 1} // stream → version that fails
		l := newOrderLog()
		r := concurrentReactor(t, s, "parking", processing.Options{
			Concurrency: 32, BatchSize: 100, Park: true,
			ErrorHandler: processing.ConstantRetry{Delay: time.Millisecond, MaxAttempts: 3},
		}, l, func(e event.Event, _ int) error {
			if v, ok := poison[e.StreamID]; ok && e.Version == v {
				return errors.New("poison")
			}
			return nil
		})
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, last)
		got, _ := l.snapshot()
		want := wantVersions(t, s, last)
		wantParked := make(map[int64]bool)
		for e, err := range s.ReadAll(t.Context(), 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			v, ok := poison[e.StreamID]
			if !ok || e.Version < v {
				continue
			}
			switch e.Data.(type) {
			case testkit.Deposited, testkit.Withdrawn:
				wantParked[e.Position] = true
			}
		}
		for stream, v := range poison {
			want[stream] = slices.DeleteFunc(want[stream], func(x int64) bool { return x >= v })
		}
		checkVersions(t, got, want)
		parked := testkit.ParkedPositions(t, s, "parking")
		for pos, row := range parked {
			if !wantParked[pos] {
				t.Errorf("parked %+v, want it handled", row)
			}
			first := poison[row.StreamID]
			if (row.Version == first) != (row.WaitsOn == 0) {
				t.Errorf("parked %+v: want the poison event parked for its error and the later ones behind it", row)
			}
		}
		for pos := range wantParked {
			if _, ok := parked[pos]; !ok {
				t.Errorf("event at %d is not parked, want it parked", pos)
			}
		}
		if st := r.Status(); st.Parked != len(wantParked) {
			t.Errorf("status counts %d parked events, want %d", st.Parked, len(wantParked))
		}
	})
}

// TestConcurrencyFailingStreamBlocksOnlyItself: while one stream's first
// event fails again and again, the other streams' events (within the
// read window) are all handled, and the position stays right before the
// failing event; once it succeeds, the position reaches the head.
func TestConcurrencyFailingStreamBlocksOnlyItself(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		before := testkit.MustAppend(t, s, "acct-a", event.Any, []any{testkit.Deposited{Amount: 1}})
		bad := testkit.MustAppend(t, s, "acct-bad", event.Any, []any{testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3}})
		last := testkit.Fill(t, s, 300, 10, 1)
		var broken atomic.Bool
		broken.Store(true)
		l := newOrderLog()
		r := concurrentReactor(t, s, "blocked", processing.Options{
			Concurrency: 4, ErrorHandler: processing.ConstantRetry{Delay: 10 * time.Millisecond},
		}, l, func(e event.Event, _ int) error {
			if e.Position == bad[0].Position && broken.Load() {
				return errors.New("down")
			}
			return nil
		})
		testkit.RunInBackground(t, r)
		want := wantVersions(t, s, last)
		testkit.Eventually(t, time.Minute, "every stream but the failing one handled", func() bool {
			got, _ := l.snapshot()
			for stream, w := range want {
				if stream != "acct-bad" && len(got[stream]) != len(w) {
					return false
				}
			}
			return true
		})
		testkit.Eventually(t, time.Minute, "the position saved right before the failing event", func() bool {
			return r.Status().Position == before[0].Position
		})
		if st := r.Status(); st.State != processing.Retrying || st.Attempts == 0 {
			t.Errorf("status %+v, want retrying", st)
		}
		broken.Store(false)
		testkit.WaitFor(t, r, last)
		got, _ := l.snapshot()
		checkVersions(t, got, want)
	})
}

// TestConcurrencyGivesUp: when the error handler gives up on an event
// (NoRetry, no parking), the reactor stops with the event's error and
// its position stays before the event, every event before it handled.
func TestConcurrencyGivesUp(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		testkit.Fill(t, s, 200, 10, 1)
		bad := testkit.MustAppend(t, s, "acct-bad", event.Any, []any{testkit.Deposited{Amount: 2}})
		testkit.Fill(t, s, 200, 10, 1)
		l := newOrderLog()
		var reported []processing.Failure
		r := concurrentReactor(t, s, "gives-up", processing.Options{
			Concurrency: 8, ErrorHandler: processing.NoRetry{},
			OnError: func(f processing.Failure) { reported = append(reported, f) },
		}, l, func(e event.Event, _ int) error {
			if e.Position == bad[0].Position {
				return errors.New("broken")
			}
			return nil
		})
		err := r.Run(t.Context())
		ee, ok := errors.AsType[*processing.EventError](err)
		if !ok || ee.Position != bad[0].Position {
			t.Fatalf("Run() = %v, want the error of the event at %d", err, bad[0].Position)
		}
		st := r.Status()
		if st.State != processing.Failed || st.Position >= bad[0].Position || st.Attempts != 1 {
			t.Errorf("status %+v, want failed before %d after one attempt", st, bad[0].Position)
		}
		if len(reported) != 1 || reported[0].Retry || reported[0].Position != bad[0].Position {
			t.Errorf("OnError got %+v, want one failure at %d, not retried", reported, bad[0].Position)
		}
		got, _ := l.snapshot()
		want := wantVersions(t, s, st.Position)
		for stream, w := range want {
			if g := got[stream]; len(g) < len(w) || !slices.Equal(g[:len(w)], w) {
				t.Errorf("stream %q: handled %v, want %v first", stream, g, w)
			}
		}
	})
}

// TestConcurrencyRefused: a stateful reactor refuses Concurrency above 1.
func TestConcurrencyRefused(t *testing.T) {
	s := testkit.DomainStore(t, testdb.New(t, testdb.SQLite).Gorm)
	_, err := reactor.New(s, "stateful", reactor.Options{State: &reactor.State{}, Processing: processing.Options{Concurrency: 4}})
	if !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("New(stateful, Concurrency 4) = %v, want ErrInvalid", err)
	}
	if _, err := reactor.New(s, "stateful", reactor.Options{State: &reactor.State{}, Processing: processing.Options{Concurrency: 1}}); err != nil {
		t.Errorf("New(stateful, Concurrency 1) = %v, want nil", err)
	}
	if _, err := reactor.New(s, "negative", reactor.Options{Processing: processing.Options{Concurrency: -1}}); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("New(Concurrency -1) = %v, want ErrInvalid", err)
	}
}
