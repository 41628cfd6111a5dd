package reactor_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

type InvoicePaid struct {
	Line int `json:"line"`
}

// A reactor whose side effect waits on another service handles the
// events of up to Concurrency streams at the same time; each stream's
// events are still handled in order.
func ExampleNew_concurrency() {
	ctx := context.Background()
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[InvoicePaid](reg, "invoice.paid")
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	r, err := reactor.New(store, "receipts-mailer", reactor.Options{
		Processing: processing.Options{Concurrency: 8},
	})
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	mailed := map[string][]int{} // the lines mailed, per invoice, in order
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d InvoicePaid, _ *reactor.Emitter) error {
		time.Sleep(10 * time.Millisecond) // the mail server
		mu.Lock()
		defer mu.Unlock()
		mailed[e.StreamID] = append(mailed[e.StreamID], d.Line)
		return nil
	})
	if err := r.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	var last []event.Event
	for line := 1; line <= 3; line++ {
		for _, invoice := range []string{"invoice-a", "invoice-b", "invoice-c"} {
			if last, err = store.Append(ctx, invoice, event.Any, []any{InvoicePaid{Line: line}}); err != nil {
				log.Fatal(err)
			}
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	if err := r.WaitFor(ctx, last[0].Position); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	for _, invoice := range slices.Sorted(maps.Keys(mailed)) {
		fmt.Println(invoice, mailed[invoice])
	}
	// Output:
	// invoice-a [1 2 3]
	// invoice-b [1 2 3]
	// invoice-c [1 2 3]
}
