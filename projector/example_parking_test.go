package projector_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sync/atomic"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// A projector that parks the events its handler keeps failing on: the
// other todos are projected, the broken one's later events wait behind
// it, and once the handler is fixed a retry applies them in order.
func ExampleProjector_RetryParked() {
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

	var fixed atomic.Bool // the handler's bug, until a new release
	p, err := projector.New(store, "todo-list", projector.Options{
		Processing: processing.Options{
			Park:         true,
			ErrorHandler: processing.NoRetry{}, // park at the first failure
			Logger:       slog.New(slog.DiscardHandler),
		},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS todo_list (id text PRIMARY KEY, title text NOT NULL, done boolean NOT NULL)`).Error
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d TodoAdded) error {
		if d.Title == "" && !fixed.Load() {
			return errors.New("empty title")
		}
		return tx.Exec(`INSERT INTO todo_list (id, title, done) VALUES (?, ?, false)`, e.StreamID, d.Title).Error
	})
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, _ TodoCompleted) error {
		return tx.Exec(`UPDATE todo_list SET done = true WHERE id = ?`, e.StreamID).Error
	})
	if err := p.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	for _, todo := range []struct {
		id     string
		events []any
	}{
		{"todo-1", []any{TodoAdded{Title: "buy milk"}}},
		{"todo-2", []any{TodoAdded{Title: ""}, TodoCompleted{}}},
		{"todo-3", []any{TodoAdded{Title: "walk the dog"}, TodoCompleted{}}},
	} {
		if _, err := store.Append(ctx, todo.id, event.NoStream, todo.events); err != nil {
			log.Fatal(err)
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		log.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, head); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	printTodos := func() {
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
			fmt.Printf("  %s %q %v\n", id, title, done)
		}
	}
	fmt.Println("projected:")
	printTodos()
	parked, err := p.ListParked(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("parked:", p.Status().Parked)
	for _, pk := range parked {
		fmt.Printf("  %d %s %s error=%q waits_on=%d\n", pk.Position, pk.StreamID, pk.Type, pk.Error, pk.WaitsOn)
	}

	// The fix is deployed: retry the stream.
	fixed.Store(true)
	n, err := p.RetryParked(ctx, "todo-2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retried:", n, "parked:", p.Status().Parked)
	printTodos()
	// Output:
	// projected:
	//   todo-1 "buy milk" false
	//   todo-3 "walk the dog" true
	// parked: 2
	//   2 todo-2 todo.added error="empty title" waits_on=0
	//   3 todo-2 todo.completed error="" waits_on=2
	// retried: 2 parked: 0
	//   todo-1 "buy milk" false
	//   todo-2 "" true
	//   todo-3 "walk the dog" true
}
