package reactor_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

var _ reactor.StateStore = (*eventstore.Store)(nil)

// ledgerReactor returns a migrated stateful reactor named name that keeps
// each account's balance and number of deposits in its table (named after
// it) and, for every deposit, emits to "receipts-<account>" a receipt for
// the balance after it: what it emits depends on its state, so a state
// that ran ahead of or behind the position shows in the receipts. fail, if
// set, is called before each deposit is handled and may fail it.
func ledgerReactor(t testing.TB, s reactor.StateStore, name string, opts processing.Options, fail func(e event.Event) error) *reactor.Reactor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testdb.Logger(t)
	}
	table := ledgerTable(name)
	r, err := reactor.New(s, name, reactor.Options{Processing: opts, State: &reactor.State{
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + table + ` (id text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL)`).Error
		},
		Tables: []string{table},
	}})
	if err != nil {
		t.Fatalf("reactor.New() = %v, want nil", err)
	}
	apply := func(tx *gorm.DB, id string, amount int) (int, error) {
		var rows []testkit.Account
		if err := tx.Raw(`SELECT balance, events FROM `+table+` WHERE id = ?`, id).Scan(&rows).Error; err != nil {
			return 0, err
		}
		if len(rows) == 0 {
			return amount, tx.Exec(`INSERT INTO `+table+` (id, balance, events) VALUES (?, ?, 1)`, id, amount).Error
		}
		a := rows[0]
		return a.Balance + amount, tx.Exec(`UPDATE `+table+` SET balance = ?, events = ? WHERE id = ?`, a.Balance+amount, a.Events+1, id).Error
	}
	reactor.MustOnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		if fail != nil {
			if err := fail(e); err != nil {
				return err
			}
		}
		balance, err := apply(tx, e.StreamID, d.Amount)
		if err != nil {
			return err
		}
		_, err = emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued{Amount: balance})
		return err
	})
	reactor.MustOnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Withdrawn, emit *reactor.Emitter) error {
		_, err := apply(tx, e.StreamID, -d.Amount)
		return err
	})
	if err := r.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return r
}

func ledgerTable(name string) string { return "ledger_" + name }

// checkLedger checks what a ledger reactor whose saved position is
// position left (see ledgerProblems), and returns how many deposits after
// position there are.
func checkLedger(t testing.TB, s *eventstore.Store, db *gorm.DB, name string, position int64) (after int) {
	t.Helper()
	problems, after := ledgerProblems(t, s, db, name, position)
	for _, p := range problems {
		t.Error(p)
	}
	return after
}

// ledgerProblems lists how what a ledger reactor whose saved position is
// position left is wrong: its table must equal the accounts folded from
// the events up to position (a replay), every deposit up to position must
// have exactly one receipt, for the balance after it, and no deposit
// after position any. It returns how many deposits after position there
// are.
func ledgerProblems(t testing.TB, s *eventstore.Store, db *gorm.DB, name string, position int64) (problems []string, after int) {
	t.Helper()
	got, want := testkit.ReadAccounts(t, db, ledgerTable(name)), testkit.FoldAccounts(t, s, position)
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("state has %d accounts, want %d", len(got), len(want)))
	}
	for id, w := range want {
		if g := got[id]; g != w {
			problems = append(problems, fmt.Sprintf("state of account %s = %+v, want %+v", id, g, w))
		}
	}
	balance := make(map[string]int)
	wantReceipt := make(map[string]int) // deposit ID → balance after it
	var deposits []event.Event
	receipts := make(map[string][]int) // deposit ID → receipt amounts
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch d := e.Data.(type) {
		case testkit.Deposited:
			balance[e.StreamID] += d.Amount
			wantReceipt[e.ID.String()] = balance[e.StreamID]
			deposits = append(deposits, e)
		case testkit.Withdrawn:
			balance[e.StreamID] -= d.Amount
		case testkit.ReceiptIssued:
			receipts[e.CausationID] = append(receipts[e.CausationID], d.Amount)
		}
	}
	for _, e := range deposits {
		got := receipts[e.ID.String()]
		switch {
		case e.Position > position:
			after++
			if len(got) != 0 {
				problems = append(problems, fmt.Sprintf("deposit %d after the saved position %d has receipts %v, want none", e.Position, position, got))
			}
		case len(got) != 1 || got[0] != wantReceipt[e.ID.String()]:
			problems = append(problems, fmt.Sprintf("deposit %d has receipts %v, want one for %d", e.Position, got, wantReceipt[e.ID.String()]))
		}
	}
	return problems, after
}

// A stateful reactor's state, position and emitted events move together:
// through catch-up and live events, and through a failing event, after
// which the events before it are committed (and not handled again) and the
// failing one is handled once it succeeds.
func TestStatefulReactor(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 500, 7, 20)
		var target event.Event
		for e, err := range s.ReadAll(t.Context(), 200, 1, testkit.TypeDeposited) {
			if err != nil {
				t.Fatal(err)
			}
			target = e
		}
		var fails, calls atomic.Int64
		var failures []processing.Failure
		errFlaky := errors.New("flaky")
		r := ledgerReactor(t, s, "ledger", processing.Options{
			BatchSize:    100,
			ErrorHandler: processing.ConstantRetry{Delay: time.Millisecond, MaxAttempts: 5},
			OnError:      func(f processing.Failure) { failures = append(failures, f) },
		}, func(e event.Event) error {
			calls.Add(1)
			if e.ID == target.ID && fails.Add(1) <= 2 {
				return errFlaky
			}
			return nil
		})
		testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, testkit.Head(t, s))
		testkit.Fill(t, s, 50, 3, 2)
		for {
			h := testkit.Head(t, s)
			testkit.WaitFor(t, r, h)
			if testkit.Head(t, s) == h {
				break
			}
		}
		if n := checkLedger(t, s, db.Gorm, "ledger", testkit.Head(t, s)); n != 0 {
			t.Errorf("%d deposits unanswered", n)
		}
		if len(failures) != 2 || failures[0].Position != target.Position || !errors.Is(failures[1].Err, errFlaky) {
			t.Errorf("failures %+v, want two at position %d", failures, target.Position)
		}
		// Each deposit's handler ran once, the failing one three times:
		// the events before it committed, with their state, at the first
		// failure.
		if want := int64(testkit.Deposits(500) + testkit.Deposits(50) + 2); calls.Load() != want {
			t.Errorf("deposit handler called %d times, want %d", calls.Load(), want)
		}

		// Reset empties the state with the position; a rebuild agrees.
		r2 := ledgerReactor(t, s, "ledger2", processing.Options{ErrorHandler: processing.NoRetry{}}, nil)
		if err := r2.Reset(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(testkit.ReadAccounts(t, db.Gorm, ledgerTable("ledger2"))); n != 0 {
			t.Errorf("%d rows after Reset, want 0", n)
		}
	})
}

// In a stateful reactor, Emit queues the events for the batch's commit
// and returns them without positions; the handler's Emitter gives the
// transaction.
func TestStatefulEmit(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	dep := testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Deposited{Amount: 4}})[0]
	r, err := reactor.New(s, "emit", reactor.Options{Processing: processing.Options{Logger: testdb.Logger(t), ErrorHandler: processing.NoRetry{}}, State: &reactor.State{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	var tx *gorm.DB
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		tx = emit.Tx()
		got, err = emit.Emit(ctx, "receipts", &testkit.ReceiptIssued{Amount: d.Amount})
		return err
	})
	if err := r.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.RunInBackground(t, r)
	testkit.WaitFor(t, r, dep.Position)
	stored := testkit.MustCollect(t, "ReadStream", s.ReadStream(t.Context(), "receipts", 0, 0))
	if tx == nil || len(got) != 1 || len(stored) != 1 {
		t.Fatalf("Emit() = %v, tx %v; stored %v", got, tx, stored)
	}
	want := stored[0]
	want.Position, want.Version, want.RecordedAt = 0, 0, time.Time{}
	if diff := testkit.DiffEvent(got[0], want); diff != "" {
		t.Errorf("Emit() returned %s", diff)
	}
}

func TestOnStateNeedsState(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	r, err := reactor.New(s, "stateless", reactor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = reactor.OnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		return nil
	})
	if !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("OnState on a reactor without State = %v, want ErrInvalid", err)
	}
	if _, err := reactor.New(s, "bad", reactor.Options{State: &reactor.State{Tables: []string{"x; drop"}}}); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("New with a bad table name = %v, want ErrInvalid", err)
	}
}
