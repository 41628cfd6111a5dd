// Package notify is the todo app's reactor: when a todo with a stakeholder
// email is completed, it tells the stakeholder, and records that it did by
// emitting a stakeholder_notified_of_todo_completion event into the todo's
// stream.
//
// A reactor sees each event on its own, so the notifier remembers what it
// needs of earlier events — each todo's title and stakeholder email — in a
// table of its own, from the todo_added and todo_amended events, and
// forgets a todo once it is abandoned or completed.
//
// Delivery is at-least-once (see package reactor): after a crash, the
// events since the last saved position are handled again. Every write to the
// table is idempotent, so replaying them rebuilds the same rows; a
// notification may then be sent twice, but the event recording it is stored
// once, because the reactor gives emitted events deterministic IDs.
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
	// Processing configures the reactor: batch size, error handler, logger.
	Processing processing.Options
	// Now is the clock that dates notifications; nil means time.Now.
	Now func() time.Time
}

// Notifier is the reactor, with the table it remembers todos in.
type Notifier struct {
	*reactor.Reactor
	db *gorm.DB
}

// rememberedTodo is a row of the notifier's table.
type rememberedTodo struct {
	TodoID           string  `gorm:"column:todo_id;primaryKey"`
	Title            *string `gorm:"column:title"`
	StakeholderEmail *string `gorm:"column:stakeholder_email"`
}

// Store is what the notifier needs of the event store: what a reactor
// needs, and the database it keeps its table of todos in.
// *eventstore.Store implements it.
type Store interface {
	reactor.Store
	// DB returns the store's database.
	DB() *gorm.DB
}

// New returns the notifier over store, which sends its notifications with
// sender. Call Migrate before Run.
func New(store Store, sender Sender, opts Options) (*Notifier, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	r, err := reactor.New(store, Name, reactor.Options{Processing: opts.Processing})
	if err != nil {
		return nil, err
	}
	n := &Notifier{Reactor: r, db: store.DB()}

	if err := errors.Join(
		reactor.On(r, func(ctx context.Context, e event.Event, d todo.Added, _ *reactor.Emitter) error {
			// An upsert, so that handling the event again changes nothing.
			return n.table(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&rememberedTodo{
				TodoID:           todo.IDFromStream(e.StreamID),
				Title:            &d.Title,
				StakeholderEmail: ptr(d.StakeholderEmail),
			}).Error
		}),
		reactor.On(r, func(ctx context.Context, e event.Event, d todo.Amended, _ *reactor.Emitter) error {
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
			return n.table(ctx).Where("todo_id = ?", todo.IDFromStream(e.StreamID)).Updates(set).Error
		}),
		reactor.On(r, func(ctx context.Context, e event.Event, _ todo.Abandoned, _ *reactor.Emitter) error {
			return n.forget(ctx, e)
		}),
		reactor.On(r, func(ctx context.Context, e event.Event, _ todo.Completed, emit *reactor.Emitter) error {
			var t rememberedTodo
			found, err := n.lookup(ctx, todo.IDFromStream(e.StreamID), &t)
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
			return n.forget(ctx, e)
		}),
	); err != nil {
		return nil, err
	}
	return n, nil
}

// Migrate creates the reactor's position table and the notifier's table if
// they do not exist.
func (n *Notifier) Migrate(ctx context.Context) error {
	if err := n.Reactor.Migrate(ctx); err != nil {
		return err
	}
	return n.db.WithContext(ctx).Exec(`CREATE TABLE IF NOT EXISTS ` + Name +
		` (todo_id text PRIMARY KEY, title text, stakeholder_email text)`).Error
}

func (n *Notifier) table(ctx context.Context) *gorm.DB {
	return n.db.WithContext(ctx).Table(Name)
}

func (n *Notifier) lookup(ctx context.Context, id string, t *rememberedTodo) (bool, error) {
	res := n.table(ctx).Where("todo_id = ?", id).Limit(1).Find(t)
	return res.RowsAffected > 0, res.Error
}

func (n *Notifier) forget(ctx context.Context, e event.Event) error {
	return n.table(ctx).Where("todo_id = ?", todo.IDFromStream(e.StreamID)).Delete(&rememberedTodo{}).Error
}

// ptr returns a pointer to the field's string, or nil when it is null or
// absent.
func ptr(f todo.Field) *string {
	if s, ok := f.Get(); ok {
		return &s
	}
	return nil
}
