package processing_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// A reactor split into two partitions by stream: each partition has its
// own position (and, under a runner, its own lease), so that several
// processes share the work; then, stopped, it is re-partitioned into four,
// which start from the saved positions.
func ExampleRepartition() {
	ctx := context.Background()
	store := exampleStore(ctx)
	for i := range 4 {
		if _, err := store.Append(ctx, fmt.Sprintf("account-%d", i), event.NoStream, []any{Deposited{Amount: 10}, Deposited{Amount: 5}}); err != nil {
			log.Fatal(err)
		}
	}
	r, err := reactor.New(store, "mailer", reactor.Options{Processing: processing.Options{Partitions: 2}})
	if err != nil {
		log.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d Deposited, _ *reactor.Emitter) error {
		return nil // send a mail
	})
	if err := r.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	if err := r.WaitFor(ctx, 8); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	for _, p := range r.Status().Partitions {
		fmt.Printf("%s at %d\n", p.Name, p.Position)
	}

	if err := processing.Repartition(ctx, store, "mailer", 4); err != nil {
		log.Fatal(err)
	}
	rows, err := store.ListPositions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range rows {
		if strings.HasPrefix(row.Name, "mailer#") {
			fmt.Printf("%s starts after %d\n", row.Name, row.Position)
		}
	}
	// Output:
	// mailer#0/2 at 8
	// mailer#1/2 at 8
	// mailer#0/4 starts after 8
	// mailer#1/4 starts after 8
	// mailer#2/4 starts after 8
	// mailer#3/4 starts after 8
}
