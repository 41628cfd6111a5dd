package processing_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// exampleStore opens a migrated store of the examples' events on a
// private in-memory SQLite database.
func exampleStore(ctx context.Context) *eventstore.Store {
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	event.MustRegister[Noted](reg, "noted")
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	return store
}

// Middleware wraps the handling of each event by a projector or a reactor,
// with the event and the processor in scope: here a check that refuses
// what the handlers must never see, and a trace around it.
func ExampleMiddleware() {
	ctx := context.Background()
	store := exampleStore(ctx)
	trace := func(p *processing.Processor, next processing.EventFunc) processing.EventFunc {
		return func(ctx context.Context, e event.Event) error {
			fmt.Printf("%s %s: %s at %d\n", p.Kind(), p.Name(), e.Type, e.Position)
			return next(ctx, e)
		}
	}
	positive := func(p *processing.Processor, next processing.EventFunc) processing.EventFunc {
		return func(ctx context.Context, e event.Event) error {
			if d, ok := e.Data.(Deposited); ok && d.Amount <= 0 {
				return fmt.Errorf("deposit of %d", d.Amount)
			}
			return next(ctx, e)
		}
	}
	r, err := reactor.New(store, "receipts", reactor.Options{Processing: processing.Options{
		Middleware:   []processing.Middleware{trace, positive}, // trace is outermost
		ErrorHandler: processing.NoRetry{},
	}})
	if err != nil {
		log.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d Deposited, emit *reactor.Emitter) error {
		fmt.Println("receipt for", d.Amount)
		return nil
	})
	if err := r.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 5}, Deposited{Amount: -1}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Run:", r.Run(ctx))
	// Output:
	// reactor receipts: deposited at 1
	// receipt for 5
	// reactor receipts: deposited at 2
	// Run: processing: receipts: handle "deposited" at position 2 (stream "acct-1"): deposit of -1
}

// A processor paused from Go (or from the runner's status endpoint, or by
// another process through the store) handles nothing until it is resumed,
// and then goes on from where it stopped.
func ExampleProcessor_Pause() {
	ctx := context.Background()
	store := exampleStore(ctx)
	p, err := processing.New(store, "printer", printer{}, processing.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	if err := p.Pause(ctx); err != nil {
		log.Fatal(err)
	}
	evs, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 5}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("paused:", p.Status().Paused)
	if err := p.Resume(ctx); err != nil {
		log.Fatal(err)
	}
	if err := p.WaitFor(ctx, evs[0].Position); err != nil {
		log.Fatal(err)
	}
	stop()
	fmt.Println("Run:", <-done)
	// Output:
	// paused: true
	// 1 acct-1 {Amount:5}
	// Run: <nil>
}
