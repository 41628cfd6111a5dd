package reactor_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// TestParkRetryEmitsOnce: a reactor whose handler emits a receipt and
// then fails, for one stream: the event is parked (its receipt already
// stored), the stream's later deposits wait behind it, the other streams'
// are answered. A retry that fails again, and then one that succeeds,
// emit nothing twice: every deposit has exactly one receipt, and the
// waiting stream's receipts come in its order.
func TestParkRetryEmitsOnce(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		testkit.MustAppend(t, s, "acct-ok", event.Any, []any{testkit.Deposited{Amount: 1}})
		bad := testkit.MustAppend(t, s, "acct-bad", event.Any, []any{testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3}})
		ok := testkit.MustAppend(t, s, "acct-ok", event.Any, []any{testkit.Deposited{Amount: 4}})

		var mu sync.Mutex
		broken := true
		calls := map[int64]int{}
		r, err := reactor.New(s, "receipts", reactor.Options{Processing: processing.Options{
			Park: true, ErrorHandler: processing.NoRetry{}, Logger: testdb.Logger(t),
		}})
		if err != nil {
			t.Fatal(err)
		}
		reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
			mu.Lock()
			calls[e.Position]++
			fail := broken && e.Position == bad[0].Position
			mu.Unlock()
			if _, err := emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued(d)); err != nil {
				return err
			}
			if fail {
				return errors.New("mail server down")
			}
			return nil
		})
		if err := r.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		stop := testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, ok[0].Position)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		rows, err := r.ListParked(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].Position != bad[0].Position || rows[0].Error != "mail server down" || rows[1].WaitsOn != bad[0].Position {
			t.Fatalf("parked %+v; want both deposits of acct-bad, the second waiting on the first", rows)
		}
		if st := r.Status(); st.Parked != 2 {
			t.Errorf("status counts %d parked; want 2", st.Parked)
		}

		// Still broken: the retry emits the receipt again (the same
		// event, stored once), fails, and keeps both parked.
		if n, err := r.RetryParked(t.Context(), "acct-bad"); n != 0 || err == nil {
			t.Fatalf("RetryParked while broken = %d, %v; want 0 and an error", n, err)
		}
		if rows, _ := r.ListParked(t.Context(), "acct-bad"); len(rows) != 2 || rows[0].Attempts != 2 {
			t.Fatalf("after a failed retry: parked %+v; want both, the first with 2 attempts", rows)
		}
		mu.Lock()
		broken = false
		mu.Unlock()
		if n, err := r.RetryParked(t.Context(), "acct-bad"); n != 2 || err != nil {
			t.Fatalf("RetryParked = %d, %v; want 2, nil", n, err)
		}
		if n, err := r.RetryParked(t.Context(), "acct-bad"); n != 0 || err != nil {
			t.Fatalf("RetryParked again = %d, %v; want 0, nil", n, err)
		}
		if st := r.Status(); st.Parked != 0 {
			t.Errorf("status counts %d parked; want 0", st.Parked)
		}

		if n := checkReceipts(t, s); n != 4 {
			t.Errorf("%d receipts; want 4", n)
		}
		mu.Lock()
		if calls[bad[0].Position] != 3 || calls[bad[1].Position] != 1 {
			t.Errorf("handler calls %v; want 3 for the poison event, 1 for the one behind it", calls)
		}
		mu.Unlock()
		receipts := testkit.MustCollect(t, "receipts", s.ReadStream(t.Context(), "receipts-acct-bad", 0, 0))
		if len(receipts) != 2 || receipts[0].CausationID != bad[0].ID.String() || receipts[1].CausationID != bad[1].ID.String() {
			t.Errorf("receipts of acct-bad %+v; want one per deposit, in order", receipts)
		}
	})
}
