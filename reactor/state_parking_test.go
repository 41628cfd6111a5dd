package reactor_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// A stateful reactor that parks: the poison event and its stream's later
// events are parked in the batch's transaction, with the state and the
// position, and the other streams go on; a retry that fails again changes
// nothing, and one that succeeds applies them to the state, emits their
// receipts once and unparks them, in one transaction.
func TestStatefulParking(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.MustAppend(t, s, "acct-ok", event.Any, []any{testkit.Deposited{Amount: 1}})
		bad := testkit.MustAppend(t, s, "acct-bad", event.Any, []any{testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3}})
		ok := testkit.MustAppend(t, s, "acct-ok", event.Any, []any{testkit.Deposited{Amount: 4}})

		var broken atomic.Bool
		broken.Store(true)
		errDown := errors.New("mail server down")
		r := ledgerReactor(t, s, "ledger", processing.Options{Park: true, ErrorHandler: processing.NoRetry{}}, func(e event.Event) error {
			if broken.Load() && e.ID == bad[0].ID {
				return errDown
			}
			return nil
		})
		stop := testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, ok[0].Position)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		rows, err := r.ListParked(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].Position != bad[0].Position || rows[1].WaitsOn != bad[0].Position {
			t.Fatalf("parked %+v; want both deposits of acct-bad, the second waiting on the first", rows)
		}
		state := testkit.ReadAccounts(t, db.Gorm, ledgerTable("ledger"))
		if len(state) != 1 || state["acct-ok"] != (testkit.Account{Balance: 5, Events: 2}) {
			t.Errorf("state %+v; want acct-ok only, with both its deposits", state)
		}

		if n, err := r.RetryParked(t.Context(), "acct-bad"); n != 0 || !errors.Is(err, errDown) {
			t.Fatalf("RetryParked while broken = %d, %v; want 0 and %v", n, err, errDown)
		}
		if rows, _ := r.ListParked(t.Context(), "acct-bad"); len(rows) != 2 {
			t.Fatalf("after a failed retry: parked %+v; want both", rows)
		}
		broken.Store(false)
		if n, err := r.RetryParked(t.Context(), "acct-bad"); n != 2 || err != nil {
			t.Fatalf("RetryParked = %d, %v; want 2, nil", n, err)
		}
		if n := checkLedger(t, s, db.Gorm, "ledger", testkit.Head(t, s)); n != 0 {
			t.Errorf("%d deposits unanswered", n)
		}
	})
}
