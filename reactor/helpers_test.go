package reactor_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// receiptReactor emits a receipt to "receipts-<account>" for every deposit,
// and counts its handler calls in calls.
func receiptReactor(t testing.TB, s reactor.Store, name string, opts processing.Options, calls *atomic.Int64) *reactor.Reactor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testdb.Logger(t)
	}
	r, err := reactor.New(s, name, reactor.Options{Processing: opts})
	if err != nil {
		t.Fatalf("reactor.New() = %v, want nil", err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
		if calls != nil {
			calls.Add(1)
		}
		_, err := emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued(d))
		return err
	})
	if err := r.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return r
}

// checkReceipts checks that every deposit has exactly one receipt, caused
// by it and in its conversation, and that there are no other receipts.
func checkReceipts(t testing.TB, s *eventstore.Store) (receipts int) {
	t.Helper()
	deposits := make(map[string]event.Event)
	byCause := make(map[string]int)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch d := e.Data.(type) {
		case testkit.Deposited:
			deposits[e.ID.String()] = e
		case testkit.ReceiptIssued:
			receipts++
			byCause[e.CausationID]++
			cause, ok := deposits[e.CausationID]
			if !ok {
				t.Errorf("receipt %d caused by %q, which is no earlier deposit", e.Position, e.CausationID)
				continue
			}
			wantCorr := cause.CorrelationID
			if wantCorr == "" {
				wantCorr = cause.ID.String()
			}
			if e.CorrelationID != wantCorr || e.StreamID != "receipts-"+cause.StreamID || d.Amount != cause.Data.(testkit.Deposited).Amount {
				t.Errorf("receipt %+v for deposit %+v: want stream %q, correlation %q, same amount", e, cause, "receipts-"+cause.StreamID, wantCorr)
			}
		}
	}
	for id := range deposits {
		if n := byCause[id]; n != 1 {
			t.Errorf("deposit %s has %d receipts, want 1", id, n)
		}
	}
	return receipts
}
