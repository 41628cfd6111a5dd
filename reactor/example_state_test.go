package reactor_test

import (
	"context"
	"fmt"
	"log"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// openExampleStore opens a migrated store of the sign-up events on a
// private in-memory SQLite database.
func openExampleStore(ctx context.Context) *eventstore.Store {
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[UserSignedUp](reg, "user.signed_up")
	event.MustRegister[WelcomeMailSent](reg, "user.welcome_mail_sent")
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	return store
}

// runUntil runs r until it has handled the event at position.
func runUntil(ctx context.Context, r *reactor.Reactor, position int64) {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	if err := r.WaitFor(ctx, position); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}

// A welcome-mail reactor added to a system that has users already must
// not mail them all on its first run: started from the head, it mails only
// the users who sign up after it is first registered (by its Migrate, or
// its first Run). The head is recorded once, as its position: restarted
// later, it goes on from where it stopped, never from the new head.
func Example_fromHead() {
	ctx := context.Background()
	store := openExampleStore(ctx)
	for i, email := range []string{"ada@example.com", "bob@example.com"} {
		if _, err := store.Append(ctx, fmt.Sprint("user-", i+1), event.NoStream, []any{UserSignedUp{Email: email}}); err != nil {
			log.Fatal(err)
		}
	}

	r, err := reactor.New(store, "welcome-mail", reactor.Options{
		Processing: processing.Options{Start: processing.FromHead()},
	})
	if err != nil {
		log.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d UserSignedUp, emit *reactor.Emitter) error {
		fmt.Println("sending a welcome mail to", d.Email)
		_, err := emit.Emit(ctx, e.StreamID, WelcomeMailSent{To: d.Email})
		return err
	})
	if err := r.Migrate(ctx); err != nil { // registers it at the head
		log.Fatal(err)
	}

	cy, err := store.Append(ctx, "user-3", event.NoStream, []any{UserSignedUp{Email: "cy@example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	runUntil(ctx, r, cy[0].Position)
	// Output:
	// sending a welcome mail to cy@example.com
}

// A stateful reactor remembers, in a table of its own, the addresses it
// has welcomed, and welcomes each address once, however many accounts
// sign up with it. The table, the events it emits and its position commit
// in one transaction per batch: after a crash, they still agree.
func Example_state() {
	ctx := context.Background()
	store := openExampleStore(ctx)

	r, err := reactor.New(store, "welcome-once", reactor.Options{
		State: &reactor.State{
			Setup: func(ctx context.Context, tx *gorm.DB) error {
				return tx.Exec(`CREATE TABLE IF NOT EXISTS welcomed (email text PRIMARY KEY)`).Error
			},
			Tables: []string{"welcomed"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	reactor.MustOnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, d UserSignedUp, emit *reactor.Emitter) error {
		var n int64
		if err := tx.Table("welcomed").Where("email = ?", d.Email).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			fmt.Println("already welcomed", d.Email)
			return nil
		}
		if err := tx.Exec(`INSERT INTO welcomed (email) VALUES (?)`, d.Email).Error; err != nil {
			return err
		}
		fmt.Println("sending a welcome mail to", d.Email)
		_, err := emit.Emit(ctx, e.StreamID, WelcomeMailSent{To: d.Email})
		return err
	})
	if err := r.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	var last []event.Event
	for i, email := range []string{"ada@example.com", "bob@example.com", "ada@example.com"} {
		if last, err = store.Append(ctx, fmt.Sprint("user-", i+1), event.NoStream, []any{UserSignedUp{Email: email}}); err != nil {
			log.Fatal(err)
		}
	}
	runUntil(ctx, r, last[0].Position)
	for e, err := range store.ReadAll(ctx, 0, 0, "user.welcome_mail_sent") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.StreamID, e.Data.(WelcomeMailSent).To)
	}
	// Output:
	// sending a welcome mail to ada@example.com
	// sending a welcome mail to bob@example.com
	// already welcomed ada@example.com
	// user-1 ada@example.com
	// user-2 bob@example.com
}
