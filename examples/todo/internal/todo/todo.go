// Package todo is the write side of the todo app: the Todo aggregate, the
// events it records, and the four commands that change it (add, amend,
// complete, abandon), handled through Cairn's command layer.
//
// A command is checked in two steps. Its Validate method checks the fields
// on their own (a blank title, a malformed date, an ID that is not a UUID)
// and reports a *FieldError: the client sent a bad request. Then the
// aggregate checks the command against the todo's history (adding a todo
// twice, completing an abandoned one) and reports a *RejectedError.
package todo

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/aggregate"
)

// AggregateType is the persisted name of the Todo aggregate type, the start
// of its stream IDs.
const AggregateType = "todo"

// Todo is the aggregate: it knows whether the todo was added, completed or
// abandoned, which is all its rules need. The text fields live in the
// events and the read models, not here.
type Todo struct {
	aggregate.Root
	added, completed, abandoned bool
}

// The reasons a Todo rejects a command, matched with errors.Is on a
// *RejectedError.
var (
	ErrAlreadyExists    = errors.New("already exists")
	ErrDoesNotExist     = errors.New("does not exist")
	ErrIsComplete       = errors.New("is complete")
	ErrIsAbandoned      = errors.New("is abandoned")
	ErrAlreadyComplete  = errors.New("already complete")
	ErrAlreadyAbandoned = errors.New("already abandoned")
)

// RejectedError reports a command that the todo's state does not allow.
// Its message is the one the API answers with, such as
// `Todo "6f1…" already complete`.
type RejectedError struct {
	ID     string
	Reason error
}

func (e *RejectedError) Error() string { return fmt.Sprintf("Todo %q %v", e.ID, e.Reason) }

// Unwrap returns the reason, one of the ErrXxx values above.
func (e *RejectedError) Unwrap() error { return e.Reason }

// Event handlers: they only record the facts the rules below depend on.

func (t *Todo) OnAdded(Added)                                                     { t.added = true }
func (t *Todo) OnAmended(Amended)                                                 {}
func (t *Todo) OnCompleted(Completed)                                             { t.completed = true }
func (t *Todo) OnAbandoned(Abandoned)                                             { t.abandoned = true }
func (t *Todo) OnStakeholderNotifiedOfCompletion(StakeholderNotifiedOfCompletion) {}

// Add records a new todo.
func (t *Todo) Add(c Add) error {
	if t.added {
		return t.reject(ErrAlreadyExists)
	}
	title, _ := c.Title.Get()
	return aggregate.Apply(t, Added{
		Title:            title,
		Description:      c.Description,
		DueDate:          c.DueDate,
		StakeholderEmail: c.StakeholderEmail,
	})
}

// Amend records a change to an outstanding todo: the fields sent, even none.
func (t *Todo) Amend(c Amend) error {
	switch {
	case !t.added:
		return t.reject(ErrDoesNotExist)
	case t.completed:
		return t.reject(ErrIsComplete)
	case t.abandoned:
		return t.reject(ErrIsAbandoned)
	}
	return aggregate.Apply(t, Amended{
		Title:            c.Title,
		Description:      c.Description,
		DueDate:          c.DueDate,
		StakeholderEmail: c.StakeholderEmail,
	})
}

// Complete records that an outstanding todo was done.
func (t *Todo) Complete(c Complete) error {
	if err := t.checkOutstanding(); err != nil {
		return err
	}
	on, _ := c.CompletedOn.Get()
	return aggregate.Apply(t, Completed{CompletedOn: on})
}

// Abandon records that an outstanding todo will not be done.
func (t *Todo) Abandon(c Abandon) error {
	if err := t.checkOutstanding(); err != nil {
		return err
	}
	on, _ := c.AbandonedOn.Get()
	return aggregate.Apply(t, Abandoned{AbandonedOn: on})
}

func (t *Todo) checkOutstanding() error {
	switch {
	case !t.added:
		return t.reject(ErrDoesNotExist)
	case t.completed:
		return t.reject(ErrAlreadyComplete)
	case t.abandoned:
		return t.reject(ErrAlreadyAbandoned)
	}
	return nil
}

func (t *Todo) reject(reason error) error { return &RejectedError{ID: t.ID(), Reason: reason} }

// SnapshotSchemaVersion is the version of the shape of a Todo's snapshot
// (todoState below): change it whenever that shape changes.
const SnapshotSchemaVersion = 1

// todoState is a Todo's state in a snapshot: all of it.
type todoState struct {
	Added     bool `json:"added"`
	Completed bool `json:"completed"`
	Abandoned bool `json:"abandoned"`
}

// MarshalSnapshot writes the todo's state for a snapshot, making Todo an
// aggregate.Snapshotter.
func (t *Todo) MarshalSnapshot() ([]byte, error) {
	return json.Marshal(todoState{Added: t.added, Completed: t.completed, Abandoned: t.abandoned})
}

// UnmarshalSnapshot restores the state written by MarshalSnapshot.
func (t *Todo) UnmarshalSnapshot(data []byte) error {
	var s todoState
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	t.added, t.completed, t.abandoned = s.Added, s.Completed, s.Abandoned
	return nil
}

var _ aggregate.Snapshotter = (*Todo)(nil)
