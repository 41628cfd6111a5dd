package processing_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"slices"
	"sync"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
)

// totals is an EventHandler: it adds up each account's deposits, one
// event at a time, for the events of several accounts at once.
type totals struct {
	mu  sync.Mutex
	sum map[string][]int // running totals, per account
}

func (*totals) Types() []string { return []string{"deposited"} }

// HandleBatch is never called with Concurrency above 1.
func (*totals) HandleBatch(context.Context, event.Batch, processing.Checkpoint) (int64, error) {
	return 0, errors.New("totals handles one event at a time")
}

func (t *totals) HandleEvent(_ context.Context, e event.Event) error {
	d := e.Data.(Deposited)
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := 0
	if s := t.sum[e.StreamID]; len(s) > 0 {
		prev = s[len(s)-1]
	}
	t.sum[e.StreamID] = append(t.sum[e.StreamID], prev+d.Amount)
	return nil
}

// A processor whose handler is an EventHandler, run with Concurrency 4:
// the accounts are handled at the same time, each one's deposits in
// order.
func ExampleEventHandler() {
	ctx := context.Background()
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	h := &totals{sum: map[string][]int{}}
	p, err := processing.New(store, "totals", h, processing.Options{Concurrency: 4})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	var last []event.Event
	for amount := 1; amount <= 4; amount++ {
		for _, acct := range []string{"acct-1", "acct-2"} {
			if last, err = store.Append(ctx, acct, event.Any, []any{Deposited{Amount: amount}}); err != nil {
				log.Fatal(err)
			}
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, last[0].Position); err != nil {
		log.Fatal(err)
	}
	stop()
	fmt.Println("Run:", <-done)
	for _, acct := range slices.Sorted(maps.Keys(h.sum)) {
		fmt.Println(acct, h.sum[acct])
	}
	// Output:
	// Run: <nil>
	// acct-1 [1 3 6 10]
	// acct-2 [1 3 6 10]
}
