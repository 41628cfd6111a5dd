package projector_test

import (
	"context"
	"fmt"
	"log"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/projector"
)

type TodoAdded struct {
	Title string `json:"title"`
}

type TodoCompleted struct{}

func Example() {
	ctx := context.Background()
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[TodoAdded](reg, "todo.added")
	event.MustRegister[TodoCompleted](reg, "todo.completed")
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	// The read model: a table of todos, built by one handler per event type.
	p, err := projector.New(store, "todo-list", projector.Options{
		Tables: []string{"todo_list"},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS todo_list (id text PRIMARY KEY, title text NOT NULL, done boolean NOT NULL)`).Error
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d TodoAdded) error {
		return tx.Exec(`INSERT INTO todo_list (id, title, done) VALUES (?, ?, false)`, e.StreamID, d.Title).Error
	})
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, _ TodoCompleted) error {
		return tx.Exec(`UPDATE todo_list SET done = true WHERE id = ?`, e.StreamID).Error
	})
	if err := p.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "buy milk"}, TodoCompleted{}}); err != nil {
		log.Fatal(err)
	}
	recorded, err := store.Append(ctx, "todo-2", event.NoStream, []any{TodoAdded{Title: "walk the dog"}})
	if err != nil {
		log.Fatal(err)
	}

	// Run the projector until it has committed the last event.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, recorded[0].Position); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	rows, err := db.Raw(`SELECT id, title, done FROM todo_list ORDER BY id`).Rows()
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, title string
		var done bool
		if err := rows.Scan(&id, &title, &done); err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, title, done)
	}
	fmt.Println("position:", p.Status().Position, p.Status().State)
	// Output:
	// todo-1 buy milk true
	// todo-2 walk the dog false
	// position: 3 stopped
}
