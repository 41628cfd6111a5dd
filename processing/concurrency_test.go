package processing_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// eventRecorder is a processing.EventHandler that records, per stream,
// the positions it handled, and runs hook (when set) before each event:
// an error it returns fails the event.
type eventRecorder struct {
	hook func(ctx context.Context, e event.Event) error

	mu       sync.Mutex
	byStream map[string][]int64
	all      map[int64]bool
}

func newEventRecorder(hook func(ctx context.Context, e event.Event) error) *eventRecorder {
	return &eventRecorder{hook: hook, byStream: make(map[string][]int64), all: make(map[int64]bool)}
}

func (r *eventRecorder) Types() []string { return nil }

func (r *eventRecorder) HandleBatch(context.Context, event.Batch, processing.Checkpoint) (int64, error) {
	return 0, errors.New("HandleBatch called on a concurrent processor")
}

func (r *eventRecorder) HandleEvent(ctx context.Context, e event.Event) error {
	if r.hook != nil {
		if err := r.hook(ctx, e); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byStream[e.StreamID] = append(r.byStream[e.StreamID], e.Position)
	r.all[e.Position] = true
	return nil
}

func (r *eventRecorder) handled(pos int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[pos]
}

// checkStreams checks that every stream's events up to through were
// handled in order, each once.
func (r *eventRecorder) checkStreams(t testing.TB, events []event.Event, through int64) {
	t.Helper()
	want := make(map[string][]int64)
	for _, e := range events {
		if e.Position <= through {
			want[e.StreamID] = append(want[e.StreamID], e.Position)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, w := range want {
		if g := r.byStream[s]; !slices.Equal(g, w) {
			t.Errorf("stream %q: handled %v, want %v", s, g, w)
		}
	}
}

// A plain processor whose handler is an EventHandler handles events
// concurrently, each stream in order; a panic is recovered and the event
// retried. A handler without HandleEvent is refused.
func TestConcurrentEventHandler(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		testkit.Fill(t, s, 500, 20, 2)
		var once sync.Once
		var panics []processing.Failure
		rec := newEventRecorder(func(_ context.Context, e event.Event) error {
			if e.Position == 100 {
				once.Do(func() { panic("boom") })
			}
			return nil
		})
		p := newProcessor(t, s, "concurrent", rec, processing.Options{
			Concurrency: 4, BatchSize: 50, ErrorHandler: processing.ConstantRetry{},
			OnError: func(f processing.Failure) { panics = append(panics, f) },
		})
		testkit.RunInBackground(t, p)
		head := testkit.Head(t, s)
		testkit.WaitFor(t, p, head)
		rec.checkStreams(t, testkit.MustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0)), head)
		if len(panics) != 1 || panics[0].Position != 100 {
			t.Fatalf("failures %+v, want one at 100", panics)
		}
		if _, ok := errors.AsType[*processing.PanicError](panics[0].Err); !ok {
			t.Errorf("failure %v, want a PanicError", panics[0].Err)
		}

		_, err := processing.New(s, "batches only", &recorder{}, processing.Options{Concurrency: 2})
		if !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("New(a batch handler, Concurrency 2) = %v, want ErrInvalid", err)
		}
	})
}

// When a concurrent processor's context ends while handlers are in
// flight, they are cancelled and the position saved is the contiguous
// prefix of handled events: every event up to it handled, the first
// unfinished one after it.
func TestConcurrentCancel(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		testkit.Fill(t, s, 100, 10, 1)
		stuck := testkit.MustAppend(t, s, "acct-stuck", event.Any, []any{testkit.Deposited{Amount: 1}})
		testkit.Fill(t, s, 100, 10, 1)
		events := testkit.MustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0))
		var before int64 // the event right before the stuck one
		for _, e := range events {
			if e.Position < stuck[0].Position {
				before = e.Position
			}
		}
		blocked := make(chan struct{})
		rec := newEventRecorder(func(ctx context.Context, e event.Event) error {
			if e.StreamID == "acct-stuck" {
				close(blocked)
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		p := newProcessor(t, s, "cancelled", rec, processing.Options{Concurrency: 8})
		stop := testkit.RunInBackground(t, p)
		<-blocked
		testkit.Eventually(t, time.Minute, "every other event handled", func() bool {
			for _, e := range events {
				if e.Position != stuck[0].Position && !rec.handled(e.Position) {
					return false
				}
			}
			return true
		})
		if err := stop(); err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
		pos, _, err := s.LoadPosition(t.Context(), "cancelled")
		if err != nil {
			t.Fatal(err)
		}
		if pos != before {
			t.Errorf("saved position %d, want %d, right before the unfinished event", pos, before)
		}
		if st := p.Status(); st.State != processing.Stopped || st.Position != pos {
			t.Errorf("status %+v, want stopped at %d", st, pos)
		}
	})
}
