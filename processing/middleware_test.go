package processing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/reactor"
)

// trace records what middleware and handlers do, in order.
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (tr *trace) add(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
}

func (tr *trace) get() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.lines)
}

// traced returns middleware that records its name, the processor's name
// and kind, and the event's position, before and after the rest.
func traced(tr *trace, name string) processing.Middleware {
	return func(p *processing.Processor, next processing.EventFunc) processing.EventFunc {
		return func(ctx context.Context, e event.Event) error {
			tr.add("%s> %s %s %d", name, p.Kind(), p.Name(), e.Position)
			err := next(ctx, e)
			tr.add("<%s %s %s %d", name, p.Kind(), p.Name(), e.Position)
			return err
		}
	}
}

// Middleware runs around every event a projector and a reactor handle,
// the first given outermost, with the processor in scope.
func TestMiddlewareOrder(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 120, 5, 10)
		var tr trace
		opts := processing.Options{
			Logger:       testdb.Logger(t),
			ErrorHandler: processing.NoRetry{},
			BatchSize:    25,
			Middleware:   []processing.Middleware{traced(&tr, "outer"), traced(&tr, "inner")},
		}

		proj, err := projector.New(s, "mw-projector", projector.Options{Processing: opts})
		if err != nil {
			t.Fatal(err)
		}
		projector.MustOn(proj, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited) error {
			tr.add("handler %s %d", proj.Kind(), e.Position)
			return nil
		})
		r, err := reactor.New(s, "mw-reactor", reactor.Options{Processing: opts})
		if err != nil {
			t.Fatal(err)
		}
		reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
			tr.add("handler %s %d", r.Kind(), e.Position)
			return nil
		})
		for _, p := range []interface{ Migrate(context.Context) error }{proj, r} {
			if err := p.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		testkit.RunInBackground(t, proj)
		testkit.RunInBackground(t, r)
		testkit.Fill(t, s, 30, 5, 3) // live events too
		head := testkit.Head(t, s)
		testkit.WaitFor(t, proj, head)
		testkit.WaitFor(t, r, head)

		deposits := testkit.MustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0, testkit.TypeDeposited))
		for _, k := range []struct{ kind, name string }{{"projector", "mw-projector"}, {"reactor", "mw-reactor"}} {
			var want []string
			for _, e := range deposits {
				want = append(want,
					fmt.Sprintf("outer> %s %s %d", k.kind, k.name, e.Position),
					fmt.Sprintf("inner> %s %s %d", k.kind, k.name, e.Position),
					fmt.Sprintf("handler %s %d", k.kind, e.Position),
					fmt.Sprintf("<inner %s %s %d", k.kind, k.name, e.Position),
					fmt.Sprintf("<outer %s %s %d", k.kind, k.name, e.Position))
			}
			var got []string
			for _, l := range tr.get() {
				if strings.Contains(l, " "+k.kind+" ") {
					got = append(got, l)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: trace of %d lines, want %d:\n%s", k.kind, len(got), len(want), strings.Join(got[:min(len(got), 12)], "\n"))
			}
		}
	})
}

// An error from middleware fails the event as a handler's would, naming
// it; middleware that does not call next skips the handler.
func TestMiddlewareErrors(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{
			testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: -2}, testkit.Deposited{Amount: 3}})
		errNegative := errors.New("negative amount")
		validate := func(p *processing.Processor, next processing.EventFunc) processing.EventFunc {
			return func(ctx context.Context, e event.Event) error {
				if d := e.Data.(testkit.Deposited); d.Amount < 0 {
					return errNegative
				}
				return next(ctx, e)
			}
		}
		var handled []int64
		p := newReactor(t, s, "validated", processing.Options{ErrorHandler: processing.NoRetry{}, Middleware: []processing.Middleware{validate}},
			func(e event.Event) { handled = append(handled, e.Position) })
		err := p.Run(t.Context())
		var ee *processing.EventError
		if !errors.Is(err, errNegative) || !errors.As(err, &ee) || ee.Position != evs[1].Position {
			t.Fatalf("Run() = %v, want the middleware's error naming position %d", err, evs[1].Position)
		}
		if !slices.Equal(handled, []int64{evs[0].Position}) || p.Status().Position != evs[0].Position {
			t.Errorf("handled %v, position %d; want [%d] and %d", handled, p.Status().Position, evs[0].Position, evs[0].Position)
		}

		skip := func(p *processing.Processor, next processing.EventFunc) processing.EventFunc {
			return func(ctx context.Context, e event.Event) error {
				if d := e.Data.(testkit.Deposited); d.Amount < 0 {
					return nil
				}
				return next(ctx, e)
			}
		}
		handled = nil
		p = newReactor(t, s, "skipping", processing.Options{ErrorHandler: processing.NoRetry{}, Middleware: []processing.Middleware{skip}},
			func(e event.Event) { handled = append(handled, e.Position) })
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, evs[2].Position)
		if !slices.Equal(handled, []int64{evs[0].Position, evs[2].Position}) {
			t.Errorf("handled %v, want %d and %d", handled, evs[0].Position, evs[2].Position)
		}
	})
}

// newReactor returns a migrated reactor that calls handled for each
// deposit.
func newReactor(t testing.TB, s *eventstore.Store, name string, opts processing.Options, handled func(event.Event)) *reactor.Reactor {
	t.Helper()
	opts.Logger = testdb.Logger(t)
	r, err := reactor.New(s, name, reactor.Options{Processing: opts})
	if err != nil {
		t.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		handled(e)
		return nil
	})
	if err := r.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}
