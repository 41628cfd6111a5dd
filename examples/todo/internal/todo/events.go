package todo

import (
	"errors"
	"strings"
	"time"

	"github.com/cairnhq/cairn/event"
)

// The persisted names of the todo events. They are stored with every event,
// so they never change, whatever the Go types are called.
const (
	AddedType                           = "todo_added"
	AmendedType                         = "todo_amended"
	CompletedType                       = "todo_completed"
	AbandonedType                       = "todo_abandoned"
	StakeholderNotifiedOfCompletionType = "stakeholder_notified_of_todo_completion"
)

// Added records that a todo was added. Its data is what the client sent:
// the title, and those of the other fields it sent (explicit nulls kept).
type Added struct {
	Title            string `json:"title"`
	Description      Field  `json:"description,omitzero"`
	DueDate          Field  `json:"due_date,omitzero"`
	StakeholderEmail Field  `json:"stakeholder_email,omitzero"`
}

// Amended records that a todo was changed: the fields sent, and only those,
// possibly none.
type Amended struct {
	Title            Field `json:"title,omitzero"`
	Description      Field `json:"description,omitzero"`
	DueDate          Field `json:"due_date,omitzero"`
	StakeholderEmail Field `json:"stakeholder_email,omitzero"`
}

// Completed records that a todo was completed, on the date the client sent.
type Completed struct {
	CompletedOn string `json:"completed_on"`
}

// Abandoned records that a todo was abandoned, on the date the client sent.
type Abandoned struct {
	AbandonedOn string `json:"abandoned_on"`
}

// StakeholderNotifiedOfCompletion records that the todo's stakeholder was
// told of its completion. The notifier emits it into the todo's stream.
type StakeholderNotifiedOfCompletion struct {
	NotifiedOn time.Time `json:"notified_on"`
}

// RegisterEvents registers the todo events with reg under their persisted
// names.
func RegisterEvents(reg *event.Registry) error {
	return errors.Join(
		event.Register[Added](reg, AddedType),
		event.Register[Amended](reg, AmendedType),
		event.Register[Completed](reg, CompletedType),
		event.Register[Abandoned](reg, AbandonedType),
		event.Register[StakeholderNotifiedOfCompletion](reg, StakeholderNotifiedOfCompletionType),
	)
}

// streamPrefix starts the ID of every todo's stream: todo "6f1…" lives in
// stream "todo-6f1…".
const streamPrefix = AggregateType + "-"

// StreamID returns the ID of the stream that holds todo id.
func StreamID(id string) string { return streamPrefix + id }

// IDFromStream returns the ID of the todo whose events are in the stream,
// for read models and reactors keyed by todo.
func IDFromStream(streamID string) string { return strings.TrimPrefix(streamID, streamPrefix) }
