package processing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
)

// broken is a Handler that fails on every event.
type broken struct{}

func (broken) Types() []string { return nil }

func (broken) HandleBatch(ctx context.Context, b event.Batch, cp processing.Checkpoint) (int64, error) {
	return 0, processing.NewEventError(b.Events[0], errors.New("no ledger"))
}

// Read-your-writes: after a write, wait until the processors that build
// what is read next have passed its position. The wait reads the positions
// the processors saved, so it works from any process sharing the database;
// a processor that stopped after an error is reported at once.
func ExampleWaitForPositions() {
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
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	printer, err := processing.New(store, "printer", printer{}, processing.Options{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- printer.Run(runCtx) }()

	// The printer reads only deposits; a note moves its position too.
	written, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 10}, Noted{Text: "first deposit"}})
	if err != nil {
		log.Fatal(err)
	}
	last := written[len(written)-1].Position
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := processing.WaitForPositions(wctx, store, last, "printer"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("the printer has passed", last)
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	// A processor whose error handler gave up cannot get there.
	fragile, err := processing.New(store, "fragile", broken{}, processing.Options{ErrorHandler: processing.NoRetry{}, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	if err := fragile.Run(ctx); err == nil {
		log.Fatal("fragile ran")
	}
	err = processing.WaitForPositions(wctx, store, last, "printer", "fragile")
	fmt.Println(errors.Is(err, processing.ErrBlocked))
	fmt.Println(err)
	// Output:
	// 1 acct-1 {Amount:10}
	// the printer has passed 2
	// true
	// processing: fragile cannot reach position 2 (it is at 0): stopped after an error: handle "deposited" at position 1 (stream "acct-1"): no ledger
}
