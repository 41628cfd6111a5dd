package command_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

func openCounters() (*eventstore.Store, *aggregate.Repository[Counter]) {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Incremented](reg, "counter.incremented")
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(context.Background()); err != nil {
		log.Fatal(err)
	}
	counters, err := aggregate.NewRepository[Counter](store, "counter", aggregate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return store, counters
}

func ExampleExecute() {
	ctx := context.Background()
	_, counters := openCounters()

	// Load counter "a", run the function, save; a version conflict with
	// another writer reruns all three. The result is what was written.
	res, err := command.Execute(ctx, counters, "a", func(c *Counter) error {
		return c.Increment(5)
	}, command.ExecuteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s version %d at position %d\n", res.Events[0].Type, res.Events[0].Version, res.Position)

	// An error of the function is returned as it is, and nothing is saved.
	_, err = command.Execute(ctx, counters, "a", func(c *Counter) error {
		return c.Increment(-1)
	}, command.ExecuteOptions{})
	fmt.Println(err)
	// Output:
	// wrote counter.incremented version 1 at position 1
	// negative increment
}

func ExampleDispatcher() {
	ctx := context.Background()
	store, counters := openCounters()

	// Logs without times or durations, so that the output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	ids := 0
	newID := func() string { ids++; return fmt.Sprintf("cmd-%d", ids) } // nil: random UUIDs

	var d command.Dispatcher // the zero value is ready to use
	d.Use(command.Correlation(newID), command.Logging(logger), command.Validation())
	command.MustHandle(&d, func(ctx context.Context, cmd Increment) (command.Result, error) {
		return command.Execute(ctx, counters, cmd.ID, func(c *Counter) error {
			return c.Increment(cmd.By)
		}, command.ExecuteOptions{})
	})

	ctx = command.WithCorrelationID(ctx, "request-1")
	res, err := d.Dispatch(ctx, Increment{ID: "a", By: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("position", res.Position) // wait for it to read the command's writes
	_, err = d.Dispatch(ctx, Increment{ID: "a"})
	fmt.Println(errors.Is(err, command.ErrInvalid))
	_, err = d.Dispatch(ctx, struct{ Name string }{"unknown"})
	fmt.Println(errors.Is(err, command.ErrNoHandler))

	// The stored event names its command and conversation.
	for e, err := range store.ReadStream(ctx, "counter-a", 0, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s caused by %s, correlated with %s\n", e.Type, e.CausationID, e.CorrelationID)
	}
	// Output:
	// level=INFO msg="command handled" command=command_test.Increment command_id=cmd-1 correlation_id=request-1 position=1
	// position 1
	// level=ERROR msg="command failed" command=command_test.Increment command_id=cmd-2 correlation_id=request-1 error="command: invalid command_test.Increment: By is zero"
	// true
	// true
	// counter.incremented caused by cmd-1, correlated with request-1
}
