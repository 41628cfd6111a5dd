package processing_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

var _ processing.PositionWatcher = (*eventstore.Store)(nil)

// waitCtx bounds a wait that must end on its own well before it.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// A wait sees processors that run on another store of the database (in
// another process, in production) and is right for processors that read
// only some types: events of other types move their positions too.
func TestWaitForPositions(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		deposits := &recorder{types: []string{testkit.TypeDeposited}}
		all := &recorder{}
		testkit.RunInBackground(t, newProcessor(t, s, "deposits", deposits, processing.Options{}))
		testkit.RunInBackground(t, newProcessor(t, s, "all", all, processing.Options{}))

		other, err := testdb.Open(kind, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		testkit.CloseWhenDone(t, other)
		waiter := testkit.NewStore(t, other, testkit.NewRegistry(), eventstore.Options{})

		for i, data := range []any{testkit.Deposited{Amount: 1}, testkit.Noted{Text: "not a deposit"}, testkit.Deposited{Amount: 2}} {
			evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{data})
			pos := evs[0].Position
			if err := processing.WaitForPositions(waitCtx(t), waiter, pos, "deposits", "all"); err != nil {
				t.Fatalf("event %d: WaitForPositions(%d) = %v", i, pos, err)
			}
			if !slices.Contains(all.positions(), pos) {
				t.Errorf("event %d: the wait for %d returned before the processor handled it: %v", i, pos, all.positions())
			}
			for _, name := range []string{"deposits", "all"} {
				if got, _, err := waiter.ProcessorProgress(t.Context(), name, pos); err != nil || got < pos {
					t.Errorf("event %d: %s at %d, %v after the wait for %d", i, name, got, err, pos)
				}
			}
		}
		if got, want := deposits.positions(), all.positions(); len(got) != 2 || len(want) != 3 {
			t.Errorf("handled %v and %v, want the 2 deposits and all 3 events", got, want)
		}
		if err := processing.WaitForPositions(t.Context(), waiter, 0, "deposits"); err != nil {
			t.Errorf("WaitForPositions(0) = %v, want nil at once", err)
		}
	})
}

// A processor that stops after an error records it, a wait for a position
// it has not reached reports it at once (not at its timeout), and running
// it again clears the error.
func TestWaitForFailedProcessor(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		failing := &recorder{fail: func(e event.Event) error {
			if e.Position == evs[1].Position {
				return errors.New("boom")
			}
			return nil
		}}
		p := newProcessor(t, s, "fragile", failing, processing.Options{ErrorHandler: processing.NoRetry{}, BatchSize: 1})
		if err := p.Run(t.Context()); err == nil {
			t.Fatal("Run() = nil, want the handler's error")
		}

		ctx := waitCtx(t)
		if err := processing.WaitForPositions(ctx, s, evs[0].Position, "fragile"); err != nil {
			t.Errorf("WaitForPositions(%d), a position it has passed = %v, want nil", evs[0].Position, err)
		}
		err := processing.WaitForPositions(ctx, s, evs[1].Position, "fragile")
		be, ok := errors.AsType[*processing.BlockedError](err)
		if !ok || !errors.Is(err, processing.ErrBlocked) || ctx.Err() != nil {
			t.Fatalf("WaitForPositions(%d) = %v, want a BlockedError before the timeout", evs[1].Position, err)
		}
		if be.Processor != "fragile" || be.Position != evs[0].Position || be.Target != evs[1].Position || !strings.Contains(be.Reason, "boom") {
			t.Errorf("BlockedError = %+v, want fragile at %d, not reaching %d, because of boom", be, evs[0].Position, evs[1].Position)
		}
		if !strings.Contains(err.Error(), "fragile") {
			t.Errorf("error %q does not name the processor", err)
		}

		// Fixed and run again: the error is cleared and the wait succeeds.
		failing.fail = nil
		testkit.RunInBackground(t, p)
		testkit.Eventually(t, time.Minute, "the error cleared once it runs again", func() bool {
			rows, err := s.ListPositions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return len(rows) == 1 && rows[0].LastError == ""
		})
		if err := processing.WaitForPositions(ctx, s, evs[1].Position, "fragile"); err != nil {
			t.Fatalf("WaitForPositions(%d) once it runs again = %v", evs[1].Position, err)
		}
	})
}

// A paused processor that has not reached the position blocks the wait at
// once; a processor that is merely behind makes the wait run until its
// context ends, with an error naming it.
func TestWaitForPausedOrIdleProcessor(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}})
		newProcessor(t, s, "idle", &recorder{}, processing.Options{})
		if _, _, err := s.LoadPosition(t.Context(), "idle"); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		err := processing.WaitForPositions(ctx, s, evs[0].Position, "idle", "never-ran")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "idle at 0") || !strings.Contains(err.Error(), "never-ran at 0") {
			t.Errorf("WaitForPositions on processors that do not run = %v, want the deadline, naming both", err)
		}

		if err := s.SetPaused(t.Context(), "idle", true); err != nil {
			t.Fatal(err)
		}
		ctx = waitCtx(t)
		err = processing.WaitForPositions(ctx, s, evs[0].Position, "idle")
		if be, ok := errors.AsType[*processing.BlockedError](err); !ok || be.Processor != "idle" || be.Reason != "paused" || ctx.Err() != nil {
			t.Errorf("WaitForPositions on a paused processor = %v, want a BlockedError saying it is paused", err)
		}
	})
}
