package runner_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/runner"
)

// Deposited adds Amount to an account, whose stream is the account.
type Deposited struct {
	Amount int `json:"amount"`
}

// A runner with one projector: run it, wait until the projection shows
// the events, read the status and stop. A main package would call
// runner.RunMain(ctx, r) instead, to stop on SIGINT or SIGTERM.
func Example() {
	ctx := context.Background()
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	quiet := slog.New(slog.DiscardHandler)
	store, err := eventstore.New(db, reg, eventstore.Options{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	balances, err := projector.New(store, "balances", projector.Options{
		Processing: processing.Options{Logger: quiet},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS balances (id text PRIMARY KEY, balance bigint NOT NULL)`).Error
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	projector.MustOn(balances, func(ctx context.Context, tx *gorm.DB, e event.Event, d Deposited) error {
		return tx.Exec(`INSERT INTO balances (id, balance) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET balance = balances.balance + excluded.balance`, e.StreamID, d.Amount).Error
	})
	if err := balances.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	evs, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 5}, Deposited{Amount: 7}})
	if err != nil {
		log.Fatal(err)
	}

	r, err := runner.New(store, runner.Options{
		Logger:    quiet,
		Ownership: processing.Ownership{Owner: "worker-1"},
	}, balances)
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	if err := balances.WaitFor(ctx, evs[1].Position); err != nil {
		log.Fatal(err)
	}

	st := r.Status(ctx)
	for _, p := range st.Processors {
		fmt.Printf("%s (%s): %s at %d of %d, lag %d, owner %s, attempts %d\n", p.Name, p.Kind, p.State, p.Position, p.Head, p.Lag, p.Owner, p.Attempts)
	}
	stop()
	fmt.Println("Run:", <-done)
	fmt.Println("after Run:", r.Status(ctx).Processors[0].State)
	// Output:
	// balances (projector): live at 2 of 2, lag 0, owner worker-1, attempts 0
	// Run: <nil>
	// after Run: stopped
}
