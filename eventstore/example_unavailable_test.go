package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// appendOnce appends data and, while the database is unavailable, tries
// again a few times: with the event IDs of an *OutcomeUnknownError when
// the store could not learn whether its events were stored, so that they
// are never stored twice.
func appendOnce(ctx context.Context, store *eventstore.Store, stream string, expected event.ExpectedVersion, data ...any) ([]event.Event, error) {
	var opts []event.AppendOption
	for attempt := 1; ; attempt++ {
		events, err := store.Append(ctx, stream, expected, data, opts...)
		if !errors.Is(err, eventstore.ErrUnavailable) || attempt == 5 {
			return events, err
		}
		var unknown *eventstore.OutcomeUnknownError
		if errors.As(err, &unknown) {
			opts = []event.AppendOption{event.WithIDs(unknown.IDs...)}
		}
		time.Sleep(time.Duration(attempt) * time.Second)
	}
}

// A caller that must neither lose an append nor store it twice.
func ExampleOutcomeUnknownError() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	events, err := appendOnce(ctx, store, "todo-1", event.NoStream, TodoAdded{Title: "Buy milk"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(events[0].StreamID, events[0].Version, events[0].ID)
	// Output: todo-1 1 00000000-0000-4000-8000-000000000001
}
