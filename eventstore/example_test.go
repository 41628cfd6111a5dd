package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

type TodoAdded struct {
	Title string `json:"title"`
}

type TodoCompleted struct{}

// openExampleStore opens a migrated store on a private in-memory SQLite
// database, with a fixed clock and numbered event IDs so that the output
// of the examples is the same on every run.
func openExampleStore(ctx context.Context) (*eventstore.Store, func()) {
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[TodoAdded](reg, "todo.added")
	event.MustRegister[TodoCompleted](reg, "todo.completed")
	n := 0
	store, err := eventstore.New(db, reg, eventstore.Options{
		Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) },
		NewID: func() uuid.UUID {
			n++
			return uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012d", n))
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	return store, func() { sqlDB.Close() }
}

func Example() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	// A new stream: NoStream makes sure nobody created it first.
	recorded, err := store.Append(ctx, "todo-1", event.NoStream,
		[]any{TodoAdded{Title: "buy milk"}, TodoCompleted{}},
		event.WithCorrelationID("request-42"))
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range recorded {
		fmt.Println(e.StreamID, e.Version, e.Type, e.ID, e.RecordedAt.Format(time.RFC3339), e.CorrelationID)
	}

	// Reading the stream gives the same events, decoded.
	for e, err := range store.ReadStream(ctx, "todo-1", 0, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("read %s@%d: %#v\n", e.StreamID, e.Version, e.Data)
	}
	// Output:
	// todo-1 1 todo.added 00000000-0000-4000-8000-000000000001 2025-01-02T03:04:05Z request-42
	// todo-1 2 todo.completed 00000000-0000-4000-8000-000000000002 2025-01-02T03:04:05Z request-42
	// read todo-1@1: eventstore_test.TodoAdded{Title:"buy milk"}
	// read todo-1@2: eventstore_test.TodoCompleted{}
}

func ExampleStore_Append_versionConflict() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "buy milk"}}); err != nil {
		log.Fatal(err)
	}
	// Someone who loaded the stream at version 0 tries to write too.
	_, err := store.Append(ctx, "todo-1", event.Exact(0), []any{TodoAdded{Title: "buy bread"}})
	var conflict *event.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Printf("conflict on %s: expected %v, stream is at %d\n", conflict.StreamID, conflict.Expected, conflict.Actual)
	}
	fmt.Println(errors.Is(err, event.ErrVersionConflict))

	// Appending at the version the stream is at works.
	recorded, err := store.Append(ctx, "todo-1", event.Exact(1), []any{TodoCompleted{}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended version", recorded[0].Version)
	// Output:
	// conflict on todo-1: expected no stream, stream is at 1
	// true
	// appended version 2
}

func ExampleStore_Append_idempotent() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	// A reactor derives its event IDs from what it reacts to, so a retry
	// after a crash appends the same IDs again.
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("order-7/confirmation"))
	first, err := store.Append(ctx, "mail-7", event.NoStream, []any{TodoAdded{Title: "send mail"}}, event.WithIDs(id))
	if err != nil {
		log.Fatal(err)
	}
	retry, err := store.Append(ctx, "mail-7", event.NoStream, []any{TodoAdded{Title: "send mail"}}, event.WithIDs(id))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(retry[0].ID == first[0].ID, retry[0].Position == first[0].Position)

	version, err := store.StreamVersion(ctx, "mail-7")
	fmt.Println(version, err)

	// The same ID anywhere else is an error.
	_, err = store.Append(ctx, "mail-8", event.NoStream, []any{TodoAdded{Title: "send mail"}}, event.WithIDs(id))
	fmt.Println(errors.Is(err, event.ErrDuplicateEventID))
	// Output:
	// true true
	// 1 <nil>
	// true
}

func ExampleStore_ReadAll() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	for i, title := range []string{"buy milk", "walk dog", "call mum"} {
		stream := fmt.Sprintf("todo-%d", i+1)
		if _, err := store.Append(ctx, stream, event.NoStream, []any{TodoAdded{Title: title}}); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := store.Append(ctx, "todo-2", event.Exact(1), []any{TodoCompleted{}}); err != nil {
		log.Fatal(err)
	}

	// Every event in global order, or only some types of them.
	for e, err := range store.ReadAll(ctx, 0, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.StreamID, e.Type)
	}
	for e, err := range store.ReadAll(ctx, 0, 0, "todo.completed") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("completed:", e.StreamID)
	}
	// Output:
	// todo-1 todo.added
	// todo-2 todo.added
	// todo-3 todo.added
	// todo-2 todo.completed
	// completed: todo-2
}

func ExampleStore_ReadStreamBackward() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	if _, err := store.Append(ctx, "todo-1", event.NoStream,
		[]any{TodoAdded{Title: "a"}, TodoAdded{Title: "b"}, TodoAdded{Title: "c"}}); err != nil {
		log.Fatal(err)
	}
	// The newest two events, newest first.
	for e, err := range store.ReadStreamBackward(ctx, "todo-1", 0, 2) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Data.(TodoAdded).Title)
	}
	// Output:
	// 3 c
	// 2 b
}

func ExampleStore_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "buy milk"}, TodoCompleted{}}); err != nil {
		log.Fatal(err)
	}
	// A subscription catches up with the stored events, then follows new
	// ones until its context ends.
	seen := 0
	for e, err := range store.Subscribe(ctx, 0) {
		if err != nil {
			fmt.Println("stopped:", err)
			break
		}
		fmt.Println(e.StreamID, e.Version, e.Type)
		if seen++; seen == 2 {
			cancel()
		}
	}
	// Output:
	// todo-1 1 todo.added
	// todo-1 2 todo.completed
	// stopped: context canceled
}

func ExampleStore_DeleteStream() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "buy milk"}}); err != nil {
		log.Fatal(err)
	}
	if err := store.DeleteStream(ctx, "todo-1", event.Exact(1)); err != nil {
		log.Fatal(err)
	}
	_, err := store.Append(ctx, "todo-1", event.Any, []any{TodoCompleted{}})
	fmt.Println(errors.Is(err, event.ErrStreamDeleted))
	_, err = store.StreamVersion(ctx, "todo-1")
	fmt.Println(errors.Is(err, event.ErrStreamDeleted))
	// Output:
	// true
	// true
}
