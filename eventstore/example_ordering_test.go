package eventstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// A PostgreSQL store whose writers in many processes commit at once. The
// ordering is chosen when the tables are created and recorded in the
// database: every process opens the store with the same one.
func ExampleOrdering() {
	ctx := context.Background()
	db, err := eventstore.OpenPostgres(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[TodoAdded](reg, "todo.added")
	store, err := eventstore.New(db, reg, eventstore.Options{Ordering: eventstore.OrderingXID})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err) // matches eventstore.ErrOrderingMismatch on a database migrated with lock ordering
	}
	// A status page or a metrics exporter: what holds the readers back.
	hz, err := store.Horizon(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if hz.Held && hz.HeldFor.Seconds() > 10 {
		log.Print(hz) // horizon held by transaction 1234 (pid 56, psql, idle in transaction) for 73s: …
	}
}

// Horizon on a store under lock ordering (here SQLite): nothing holds the
// readers back; every stored event is readable.
func ExampleStore_Horizon() {
	ctx := context.Background()
	store, closeDB := openExampleStore(ctx)
	defer closeDB()
	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "Buy milk"}}); err != nil {
		log.Fatal(err)
	}
	hz, err := store.Horizon(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hz.Ordering, hz.Head, hz.Readable, hz.Held)
	fmt.Println(hz)
	// Output:
	// lock 1 1 false
	// horizon not held: every event up to position 1 is readable
}
