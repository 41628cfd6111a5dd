package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

func ExampleStore_SubscribeStream() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	for _, stream := range []string{"todo-1", "todo-2"} {
		if _, err := store.Append(ctx, stream, event.NoStream, []any{TodoAdded{Title: stream}}); err != nil {
			log.Fatal(err)
		}
	}
	// Follow todo-1 from its start: its stored events, then new ones,
	// until it is deleted.
	for e, err := range store.SubscribeStream(ctx, "todo-1", 0) {
		if errors.Is(err, event.ErrStreamDeleted) {
			fmt.Println("deleted")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.StreamID, e.Version, e.Type)
		switch e.Version {
		case 1:
			if _, err := store.Append(ctx, "todo-1", event.Exact(1), []any{TodoCompleted{}}); err != nil {
				log.Fatal(err)
			}
		case 2:
			if err := store.DeleteStream(ctx, "todo-1", event.Exact(2)); err != nil {
				log.Fatal(err)
			}
		}
	}
	// Output:
	// todo-1 1 todo.added
	// todo-1 2 todo.completed
	// deleted
}

// A transaction that writes a table of the application's and appends
// events: both commit, or neither does.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()
	if err := store.DB().Exec(`CREATE TABLE todo_titles (id text PRIMARY KEY, title text)`).Error; err != nil {
		log.Fatal(err)
	}

	err := store.Transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO todo_titles (id, title) VALUES ('todo-1', 'buy milk')`).Error; err != nil {
			return err
		}
		events, err := store.AppendTx(ctx, tx, "todo-1", event.NoStream, []any{TodoAdded{Title: "buy milk"}})
		if err != nil {
			return err
		}
		fmt.Println("appended", events[0].StreamID, events[0].Version, "at position", events[0].Position)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	var titles []string
	if err := store.DB().Raw(`SELECT title FROM todo_titles`).Scan(&titles).Error; err != nil {
		log.Fatal(err)
	}
	version, err := store.StreamVersion(ctx, "todo-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(titles, "version", version)
	// Output:
	// appended todo-1 1 at position 1
	// [buy milk] version 1
}

// A load from a snapshot: the snapshot and the events after it come in one
// query. (A repository of package aggregate does this for its aggregates.)
func ExampleStore_ReadStreamFromSnapshot() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()

	for _, e := range []any{TodoAdded{Title: "a"}, TodoCompleted{}, TodoAdded{Title: "b"}} {
		if _, err := store.Append(ctx, "todo-1", event.Any, []any{e}); err != nil {
			log.Fatal(err)
		}
	}
	err := store.SaveSnapshot(ctx, event.Snapshot{StreamID: "todo-1", Version: 2, SchemaVersion: 1, Data: []byte(`{"done":1}`)})
	if err != nil {
		log.Fatal(err)
	}
	snap, found, events, err := store.ReadStreamFromSnapshot(ctx, "todo-1", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, snap.Version, string(snap.Data))
	for e, err := range events {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type)
	}
	// A snapshot of another schema version is none: every event follows.
	_, found, events, err = store.ReadStreamFromSnapshot(ctx, "todo-1", 2)
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	for _, err := range events {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(found, n)
	// Output:
	// true 2 {"done":1}
	// 3 todo.added
	// false 3
}
