package reactor_test

import (
	"context"
	"errors"
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

var _ reactor.Store = (*eventstore.Store)(nil)

func TestEmitsOncePerEvent(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		last := testkit.Fill(t, s, 400, 5, 20)
		var calls atomic.Int64
		r := receiptReactor(t, s, "receipts", processing.Options{ErrorHandler: processing.NoRetry{}, BatchSize: 50}, &calls)
		stop := testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, last)
		// Live events, after the catch-up.
		last = testkit.Fill(t, s, 40, 2, 4)
		testkit.WaitFor(t, r, last)
		if err := stop(); err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
		deposits := testkit.Deposits(400) + testkit.Deposits(40)
		if n := checkReceipts(t, s); n != deposits {
			t.Errorf("%d receipts, want %d", n, deposits)
		}
		if got := calls.Load(); got != int64(deposits) {
			t.Errorf("handler called %d times, want %d", got, deposits)
		}

		// Handling everything again (as after a crash that lost the
		// position) repeats the side effects but stores no event twice.
		before := testkit.Head(t, s)
		if err := db.Gorm.Exec(`UPDATE cairn_processor_positions SET position = 0 WHERE name = 'receipts'`).Error; err != nil {
			t.Fatal(err)
		}
		r = receiptReactor(t, s, "receipts", processing.Options{ErrorHandler: processing.NoRetry{}, BatchSize: 50}, &calls)
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, before)
		if got := calls.Load(); got != 2*int64(deposits) {
			t.Errorf("handler called %d times, want %d", got, 2*deposits)
		}
		if h := testkit.Head(t, s); h != before {
			t.Errorf("head = %d after handling again, want %d (nothing appended)", h, before)
		}
		checkReceipts(t, s)
	})
}

func TestRetryAfterEmitDoesNotDuplicate(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		last := testkit.Fill(t, s, 100, 3, 10)
		var target event.Event
		for e, err := range s.ReadAll(t.Context(), 40, 1, "deposited") {
			if err != nil {
				t.Fatal(err)
			}
			target = e
		}
		var fails atomic.Int64
		var failures []processing.Failure
		r, err := reactor.New(s, "flaky", reactor.Options{Processing: processing.Options{
			Logger:       testdb.Logger(t),
			BatchSize:    30,
			ErrorHandler: processing.ConstantRetry{Delay: time.Millisecond, MaxAttempts: 5},
			OnError:      func(f processing.Failure) { failures = append(failures, f) },
		}})
		if err != nil {
			t.Fatal(err)
		}
		reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
			if _, err := emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued(d)); err != nil {
				return err
			}
			if e.ID == target.ID {
				switch fails.Add(1) {
				case 1:
					return errors.New("mail server down")
				case 2:
					panic("mail client bug")
				}
			}
			return nil
		})
		if err := r.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, last)
		checkReceipts(t, s)
		if len(failures) != 2 || failures[0].Position != target.Position || failures[1].Attempt != 2 {
			t.Fatalf("failures = %+v, want 2 at position %d", failures, target.Position)
		}
		if _, ok := errors.AsType[*processing.PanicError](failures[1].Err); !ok {
			t.Errorf("second failure %v, want a recovered panic", failures[1].Err)
		}
	})
}

func TestNoHandlers(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	r, err := reactor.New(s, "empty", reactor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(t.Context()); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("Run() = %v, want ErrInvalid", err)
	}
}

// TestRegistration: On returns an error for a type the registry does not
// know and for a second handler of a type; MustOn panics with that error.
func TestRegistration(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	r, err := reactor.New(s, "registration", reactor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Kind(); got != "reactor" {
		t.Errorf("Kind() = %q, want reactor", got)
	}
	type unknown struct{}
	err = reactor.On(r, func(context.Context, event.Event, unknown, *reactor.Emitter) error { return nil })
	if !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("On(unregistered type) = %v, want ErrInvalid", err)
	}
	h := func(context.Context, event.Event, testkit.Deposited, *reactor.Emitter) error { return nil }
	reactor.MustOn(r, h)
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("MustOn() twice for one type panicked with %v, want ErrInvalid", err)
		}
	}()
	reactor.MustOn(r, h)
}
