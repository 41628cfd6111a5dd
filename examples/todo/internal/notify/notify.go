// Package notify is the todo app's reactor: when a todo with a stakeholder
// email is completed, it tells the stakeholder, and records that it did by
// emitting a stakeholder_notified_of_todo_completion event into the todo's
// stream.
//
// A reactor sees each event on its own, so the notifier remembers what it
// needs of earlier events — each todo's title and stakeholder email — in a
// table of its own, from the todo_added and todo_amended events, and
// forgets a todo once it is abandoned or completed. It is a stateful
// reactor (reactor.State): its table, the events it emits and its position
// commit in one transaction per batch, so the table always agrees with the
// position and the events emitted, whatever fails or crashes. Its writes
// are idempotent all the same (the todo_added insert is an upsert), so
// that an operator who moves its position back alone (cairn reset --to)
// replays into a table that ends up right.
//
// The notifier starts from the head of the store (processing.FromHead):
// added to an app with history, it notifies about todos completed from
// then on, never about the past. A todo added before it was first
// registered is unknown to it, so completing that todo notifies nobody.
//
// Notifications are at-least-once (see package reactor): after a crash,
// the events since the last saved position are handled again, and a
// notification may be sent twice; the event recording it is stored once,
// with the table's rows.
package notify

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// Name is the reactor's name, which identifies its position and goes into
// the IDs of the events it emits: it never changes. Its table has the same
// name.
const Name = "todo_completed_notifier"

// Notification is a message to a stakeholder.
type Notification struct {
	To      string
	Message string
}

// Sender sends notifications: a mailer, a chat bot, or LogSender. Send may
// be called more than once for the same notification (after a crash), and
// must be safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, n Notification) error
}

// SenderFunc adapts a function to a Sender.
type SenderFunc func(ctx context.Context, n Notification) error

// Send calls f(ctx, n).
func (f SenderFunc) Send(ctx context.Context, n Notification) error { return f(ctx, n) }

// LogSender is the default Sender: it logs the notification, "To: <email>"
// then "Message: <message>", instead of sending it.
type LogSender struct {
	// Logger receives the notifications; nil means slog.Default().
	Logger *slog.Logger
}

var _ Sender = LogSender{}

// Send logs n.
func (s LogSender) Send(ctx context.Context, n Notification) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.InfoContext(ctx, "To: "+n.To)
	logger.InfoContext(ctx, "Message: "+n.Message)
	return nil
}

// Options configures a Notifier. The zero value works.
type Options struct {
	// Processing configures the reactor: batch size, error handler,
	// logger. Its Start is ignored: the notifier starts from the head.
	Processing processing.Options
	// Now is the clock that dates notifications; nil means time.Now.
	Now func() time.Time
}

// Notifier is the reactor, with the table it remembers todos in.
type Notifier struct {
	*reactor.Reactor
}

// rememberedTodo is a row of the notifier's table.
type rememberedTodo struct {
	TodoID           string  `gorm:"column:todo_id;primaryKey"`
	Title            *string `gorm:"column:title"`
	StakeholderEmail *string `gorm:"column:stakeholder_email"`
}

// Store is what the notifier needs of the event store: what a stateful
// reactor needs, whose state is its table of todos. *eventstore.Store
// implements it.
type Store = reactor.StateStore

// New returns the notifier over store, which sends its notifications with
// sender. Call Migrate before Run.
func New(store Store, sender Sender, opts Options) (*Notifier, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	popts := opts.Processing
	popts.Start = processing.FromHead()
	r, err := reactor.New(store, Name, reactor.Options{
		Processing: popts,
		State: &reactor.State{
			Setup: func(ctx context.Context, tx *gorm.DB) error {
				return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + Name +
					` (todo_id text PRIMARY KEY, title text, stakeholder_email text)`).Error
			},
			Tables: []string{Name},
		},
	})
	if err != nil {
		return nil, err
	}
	n := &Notifier{Reactor: r}

	if err := errors.Join(
		reactor.OnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Added, _ *reactor.Emitter) error {
			// Committed with the position, so handled once; an upsert
			// still, for a position moved back by hand.
			return table(ctx, tx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&rememberedTodo{
				TodoID:           todo.IDFromStream(e.StreamID),
				Title:            &d.Title,
				StakeholderEmail: ptr(d.StakeholderEmail),
			}).Error
		}),
		reactor.OnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Amended, _ *reactor.Emitter) error {
			set := map[string]any{}
			if d.Title.Sent() {
				set["title"] = d.Title.Value()
			}
			if d.StakeholderEmail.Sent() {
				set["stakeholder_email"] = d.StakeholderEmail.Value()
			}
			if len(set) == 0 {
				return nil // nothing the notifier remembers changed
			}
			return table(ctx, tx).Where("todo_id = ?", todo.IDFromStream(e.StreamID)).Updates(set).Error
		}),
		reactor.OnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, _ todo.Abandoned, _ *reactor.Emitter) error {
			return forget(ctx, tx, e)
		}),
		reactor.OnState(r, func(ctx context.Context, tx *gorm.DB, e event.Event, _ todo.Completed, emit *reactor.Emitter) error {
			var t rememberedTodo
			found, err := lookup(ctx, tx, todo.IDFromStream(e.StreamID), &t)
			if err != nil {
				return err
			}
			if found && t.StakeholderEmail != nil && *t.StakeholderEmail != "" {
				title := ""
				if t.Title != nil {
					title = *t.Title
				}
				err := sender.Send(ctx, Notification{
					To:      *t.StakeholderEmail,
					Message: "Your todo item " + title + " has been completed!",
				})
				if err != nil {
					return err // retried per the error handler, before anything is emitted
				}
				notified := todo.StakeholderNotifiedOfCompletion{NotifiedOn: now().UTC().Truncate(time.Second)}
				if _, err := emit.Emit(ctx, e.StreamID, notified); err != nil {
					return err
				}
			}
			return forget(ctx, tx, e)
		}),
	); err != nil {
		return nil, err
	}
	return n, nil
}

// The notifier's table is written in the batch's transaction tx, on the
// transaction's own context (see reactor.StateFunc).

func table(_ context.Context, tx *gorm.DB) *gorm.DB {
	return tx.Table(Name)
}

func lookup(ctx context.Context, tx *gorm.DB, id string, t *rememberedTodo) (bool, error) {
	res := table(ctx, tx).Where("todo_id = ?", id).Limit(1).Find(t)
	return res.RowsAffected > 0, res.Error
}

func forget(ctx context.Context, tx *gorm.DB, e event.Event) error {
	return table(ctx, tx).Where("todo_id = ?", todo.IDFromStream(e.StreamID)).Delete(&rememberedTodo{}).Error
}

// ptr returns a pointer to the field's string, or nil when it is null or
// absent.
func ptr(f todo.Field) *string {
	if s, ok := f.Get(); ok {
		return &s
	}
	return nil
}
