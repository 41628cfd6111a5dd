package reactor_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// A reactor that parks the sign-ups its mailer rejects, so that the other
// users get their mail; an operator then retries one parked sign-up and
// skips the other, which logs who skipped what.
func ExampleReactor_RetryParked() {
	ctx := context.Background()
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

	// WARN and above to standard output, without times: the audit records.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "error" || a.Key == "attempt" || a.Key == "attempts" {
				return slog.Attr{}
			}
			return a
		},
	}))
	rejected := map[string]bool{"bob@example": true, "eve@example": true}
	r, err := reactor.New(store, "welcome-mail", reactor.Options{Processing: processing.Options{
		Park:         true,
		ErrorHandler: processing.ConstantRetry{MaxAttempts: 2}, // then park
		Logger:       logger,
	}})
	if err != nil {
		log.Fatal(err)
	}
	reactor.MustOn(r, func(ctx context.Context, e event.Event, d UserSignedUp, emit *reactor.Emitter) error {
		if rejected[d.Email] {
			return errors.New("mailer: address rejected")
		}
		fmt.Println("sending a welcome mail to", d.Email)
		_, err := emit.Emit(ctx, e.StreamID, WelcomeMailSent{To: d.Email})
		return err
	})
	if err := r.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	for i, email := range []string{"ada@example.com", "bob@example", "eve@example", "joe@example.com"} {
		if _, err := store.Append(ctx, fmt.Sprintf("user-%d", i+1), event.NoStream, []any{UserSignedUp{Email: email}}); err != nil {
			log.Fatal(err)
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	if err := r.WaitFor(ctx, 4); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	fmt.Println("parked:", r.Status().Parked)

	// Bob's address is fixed in the mailer; Eve's sign-up was spam.
	rejected["bob@example"] = false
	if _, err := r.RetryParked(ctx, "user-2"); err != nil {
		log.Fatal(err)
	}
	if _, err := r.SkipParked(ctx, "user-3", "ops@example.com"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("parked:", r.Status().Parked)
	// Output:
	// sending a welcome mail to ada@example.com
	// level=WARN msg="event processor failed; retrying" processor=welcome-mail position=2 stream=user-2 type=user.signed_up retry_in=0s
	// level=WARN msg="event processor parked an event; going on" processor=welcome-mail position=2 stream=user-2 type=user.signed_up
	// level=WARN msg="event processor failed; retrying" processor=welcome-mail position=3 stream=user-3 type=user.signed_up retry_in=0s
	// level=WARN msg="event processor parked an event; going on" processor=welcome-mail position=3 stream=user-3 type=user.signed_up
	// sending a welcome mail to joe@example.com
	// parked: 2
	// sending a welcome mail to bob@example
	// level=WARN msg="parked event skipped" processor=welcome-mail who=ops@example.com position=3 stream=user-3 type=user.signed_up waits_on=0
	// parked: 0
}
