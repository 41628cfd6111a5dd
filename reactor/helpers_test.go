package reactor_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// The events of the tests: deposits to accounts, notes no reactor handles,
// and the receipts the test reactor emits for deposits.
type Deposited struct {
	Amount int `json:"amount"`
}

type Noted struct {
	Text string `json:"text"`
}

type ReceiptIssued struct {
	Amount int `json:"amount"`
}

func newRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	event.MustRegister[Noted](reg, "noted")
	event.MustRegister[ReceiptIssued](reg, "receipt.issued")
	return reg
}

func newStore(t testing.TB, db *gorm.DB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.New(db, newRegistry(), eventstore.Options{Logger: testdb.Logger(t), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("eventstore.New() = %v, want nil", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return s
}

// fill appends n events to streams acct-0 … acct-(streams-1), chunk per
// append, every fourth a note and the others deposits; every other append
// has a correlation ID. It returns the last position.
func fill(t testing.TB, s *eventstore.Store, n, streams, chunk int) int64 {
	t.Helper()
	var last int64
	for k, a := 0, 0; k < n; a++ {
		stream := fmt.Sprintf("acct-%d", a%streams)
		batch := make([]any, 0, chunk)
		for ; len(batch) < chunk && k < n; k++ {
			if k%4 == 3 {
				batch = append(batch, Noted{Text: "n"})
			} else {
				batch = append(batch, Deposited{Amount: k%9 + 1})
			}
		}
		var opts []event.AppendOption
		if a%2 == 0 {
			opts = append(opts, event.WithCorrelationID(fmt.Sprintf("request-%d", a)))
		}
		evs, err := s.Append(t.Context(), stream, event.Any, batch, opts...)
		if err != nil {
			t.Fatalf("Append(%s) = %v, want nil", stream, err)
		}
		last = evs[len(evs)-1].Position
	}
	return last
}

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
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d Deposited, emit *reactor.Emitter) error {
		if calls != nil {
			calls.Add(1)
		}
		_, err := emit.Emit(ctx, "receipts-"+e.StreamID, ReceiptIssued{Amount: d.Amount})
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
		case Deposited:
			deposits[e.ID.String()] = e
		case ReceiptIssued:
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
			if e.CorrelationID != wantCorr || e.StreamID != "receipts-"+cause.StreamID || d.Amount != cause.Data.(Deposited).Amount {
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

func runInBackground(t testing.TB, r *reactor.Reactor) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t testing.TB, r *reactor.Reactor, pos int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatalf("WaitFor(%d) = %v; status %+v", pos, err, r.Status())
	}
}

func head(t testing.TB, s *eventstore.Store) int64 {
	t.Helper()
	h, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
