package projector_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// A versioned projector: its tables are named after its version, the
// queries read a view named like the table, and Rebuild builds a new copy
// beside the one that serves, swapped in once it has caught up.
func ExampleProjector_Rebuild() {
	ctx := context.Background()
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[TodoAdded](reg, "todo.added")
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	p, err := projector.New(store, "todo-list", projector.Options{
		Processing:   processing.Options{Logger: slog.New(slog.DiscardHandler)},
		Version:      1,
		PollInterval: 10 * time.Millisecond,
		Tables:       []string{"todo_list"},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			// projector.Table names the table of the version being built.
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + projector.Table(ctx, "todo_list") + ` (id text PRIMARY KEY, title text NOT NULL)`).Error
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d TodoAdded) error {
		return tx.Exec(`INSERT INTO `+projector.Table(ctx, "todo_list")+` (id, title) VALUES (?, ?)`, e.StreamID, d.Title).Error
	})
	if err := p.Migrate(ctx); err != nil { // version 1, active at once
		log.Fatal(err)
	}
	recorded, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "buy milk"}})
	if err != nil {
		log.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, recorded[0].Position); err != nil {
		log.Fatal(err)
	}

	// Rebuild: v1r1 is built beside v1, which serves until the swap.
	if err := p.Rebuild(ctx); err != nil {
		log.Fatal(err)
	}
	for {
		vs, err := p.Versions(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if vs.Build == nil && vs.Active.Label == "v1r1" {
			fmt.Println("active:", vs.Active.Label, "retired:", vs.Retired[0].Label)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	var title string
	if err := db.Raw(`SELECT title FROM todo_list WHERE id = ?`, "todo-1").Scan(&title).Error; err != nil {
		log.Fatal(err)
	}
	fmt.Println("todo_list (a view of todo_list_v1r1):", title)
	dropped, err := p.DropRetired(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dropped:", dropped[0].Label)
	// Output:
	// active: v1r1 retired: v1
	// todo_list (a view of todo_list_v1r1): buy milk
	// dropped: v1
}
