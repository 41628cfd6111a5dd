package processing_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
)

// Deposited adds Amount to an account, whose stream is the account.
type Deposited struct {
	Amount int `json:"amount"`
}

// Noted is a note on an account, which the printer does not read.
type Noted struct {
	Text string `json:"text"`
}

// printer is a Handler that prints the deposits it reads and saves its
// position after each batch.
type printer struct{}

func (printer) Types() []string { return []string{"deposited"} }

func (h printer) HandleBatch(ctx context.Context, b event.Batch, cp processing.Checkpoint) (int64, error) {
	for _, e := range b.Events {
		fmt.Printf("%d %s %+v\n", e.Position, e.StreamID, e.Data)
	}
	if err := cp.Save(ctx, b.Through); err != nil {
		return 0, err
	}
	return b.Through, nil
}

// A processor with a handler of its own. Projectors and reactors are
// processors whose handler is provided by their package.
func Example() {
	ctx := context.Background()
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
	p, err := processing.New(store, "printer", printer{}, processing.Options{
		ErrorHandler: processing.ConstantRetry{Delay: 0, MaxAttempts: 3},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	evs, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 5}, Noted{Text: "skipped"}, Deposited{Amount: 7}, Noted{Text: "passed"}})
	if err != nil {
		log.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, evs[3].Position); err != nil {
		log.Fatal(err)
	}
	stop()
	fmt.Println("Run:", <-done)
	st := p.Status()
	fmt.Println(st.Name, st.State, st.Position, st.Attempts, st.LastError)
	// Output:
	// 1 acct-1 {Amount:5}
	// 3 acct-1 {Amount:7}
	// Run: <nil>
	// printer stopped 4 0 <nil>
}

func ExampleExponentialBackoff() {
	b := processing.ExponentialBackoff{Initial: 100 * time.Millisecond, Multiplier: 2, Max: time.Second, MaxAttempts: 6}
	for attempt := 1; ; attempt++ {
		delay, ok := b.Retry(attempt)
		if !ok {
			fmt.Println("attempt", attempt, "failed: stop")
			break
		}
		fmt.Println("attempt", attempt, "failed: retry in", delay)
	}
	// Output:
	// attempt 1 failed: retry in 100ms
	// attempt 2 failed: retry in 200ms
	// attempt 3 failed: retry in 400ms
	// attempt 4 failed: retry in 800ms
	// attempt 5 failed: retry in 1s
	// attempt 6 failed: stop
}
