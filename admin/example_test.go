package admin_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/admin"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// TodoAdded is an event of the application.
type TodoAdded struct {
	Title string `json:"title"`
}

// An application mounts the admin command as a subcommand with its own
// registry (and processors): here `events --all` on an in-memory database
// holding one event.
func ExampleRun() {
	ctx := context.Background()
	newRegistry := func() *event.Registry {
		reg := event.NewRegistry(event.RegistryOptions{})
		event.MustRegister[TodoAdded](reg, "todo.added")
		return reg
	}
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		panic(err)
	}
	// A fixed clock and fixed IDs make the output the same each time.
	opts := eventstore.Options{
		Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		NewID: func() uuid.UUID { return uuid.MustParse("5f3c7a1e-0000-4000-8000-000000000001") },
	}
	store, err := eventstore.New(db, newRegistry(), opts)
	if err != nil {
		panic(err)
	}
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "Buy milk"}}); err != nil {
		panic(err)
	}

	cfg := admin.Config{
		Name: "todo admin",
		// The in-memory database is the one already open.
		Getenv: func(string) string { return ":memory:" },
		Open:   func(string) (*gorm.DB, error) { return db, nil },
		App: func(db *gorm.DB, _ eventstore.Options) (admin.App, error) {
			return admin.App{Store: store}, nil
		},
	}
	code := admin.Main(ctx, []string{"events", "--all"}, cfg, os.Stdout, os.Stderr)
	fmt.Println("exit", code)
	// Output:
	// 1 todo-1 1 todo.added 2026-01-02T03:04:05Z {"title":"Buy milk"}
	// exit 0
}
