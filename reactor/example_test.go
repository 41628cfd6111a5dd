package reactor_test

import (
	"context"
	"fmt"
	"log"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/reactor"
)

type UserSignedUp struct {
	Email string `json:"email"`
}

type WelcomeMailSent struct {
	To string `json:"to"`
}

func Example() {
	ctx := context.Background()
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[UserSignedUp](reg, "user.signed_up")
	event.MustRegister[WelcomeMailSent](reg, "user.welcome_mail_sent")
	n := 0
	store, err := eventstore.New(db, reg, eventstore.Options{
		// Numbered IDs for the events appended without IDs, so that the
		// output is the same on every run.
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

	r, err := reactor.New(store, "welcome-mail", reactor.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d UserSignedUp, emit *reactor.Emitter) error {
		fmt.Println("sending a welcome mail to", d.Email) // the side effect
		_, err := emit.Emit(ctx, e.StreamID, WelcomeMailSent{To: d.Email})
		return err
	})
	if err := r.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	signedUp, err := store.Append(ctx, "user-1", event.NoStream, []any{UserSignedUp{Email: "ada@example.com"}},
		event.WithCorrelationID("request-7"))
	if err != nil {
		log.Fatal(err)
	}

	// Run the reactor until it has handled the sign-up.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	if err := r.WaitFor(ctx, signedUp[0].Position); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	for e, err := range store.ReadStream(ctx, "user-1", 0, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d %s id=%s causation=%s correlation=%s\n", e.Version, e.Type, e.ID, e.CausationID, e.CorrelationID)
	}
	// Output:
	// sending a welcome mail to ada@example.com
	// 1 user.signed_up id=00000000-0000-4000-8000-000000000001 causation= correlation=request-7
	// 2 user.welcome_mail_sent id=e6157940-ef2a-5ef1-b9a3-d3907daaae10 causation=00000000-0000-4000-8000-000000000001 correlation=request-7
}
