package reactor_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// TestPartitionedStateful runs a stateful reactor split into partitions,
// with failures injected, then resets and runs it again: its state and
// its receipts are exactly once, and the reset covers every partition.
func TestPartitionedStateful(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 900, 30, 3)
		var mu sync.Mutex
		failed := map[int64]bool{}
		fail := func(e event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if e.Position%11 == 3 && !failed[e.Position] {
				failed[e.Position] = true
				return errors.New("injected")
			}
			return nil
		}
		opts := processing.Options{Partitions: 3, BatchSize: 25, ErrorHandler: processing.ConstantRetry{Delay: time.Millisecond}}
		r := ledgerReactor(t, s, "ledger", opts, fail)
		stop := testkit.RunInBackground(t, r)
		testkit.WaitFor(t, r, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkLedger(t, s, db.Gorm, "ledger", head)
		if len(failed) == 0 {
			t.Fatal("no failure injected")
		}

		if err := r.Reset(t.Context()); err != nil {
			t.Fatalf("Reset() = %v", err)
		}
		if got := testkit.ReadAccounts(t, db.Gorm, ledgerTable("ledger")); len(got) != 0 {
			t.Errorf("state after Reset: %d accounts, want none", len(got))
		}
		for _, p := range r.Status().Partitions {
			if p.Position != 0 {
				t.Errorf("%s at %d after Reset, want 0", p.Name, p.Position)
			}
		}
		r2 := ledgerReactor(t, s, "ledger", opts, nil)
		testkit.RunInBackground(t, r2)
		testkit.WaitFor(t, r2, head)
		checkLedger(t, s, db.Gorm, "ledger", head)
	})
}
