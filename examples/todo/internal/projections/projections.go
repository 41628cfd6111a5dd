// Package projections is the read side of the todo app: three projectors
// that keep the tables the queries read, and the queries themselves.
//
//   - outstanding_todos: every todo added and neither completed nor
//     abandoned, in the order they were added.
//   - scheduled_todos: the same rows in a table of its own, queried for those
//     with a due date, so a todo whose due date is amended to null leaves the
//     list and one that gains a date joins it.
//   - completed_todos: a private table of the incomplete todos, whose rows
//     move, with their latest values, to the completed table on completion.
//
// Each projector's handlers and its position commit in one transaction of
// the store's database (see package projector), so every event is projected
// exactly once, whatever crashes. The tables hold what the API shows, ready to
// serve: dates are stored rendered ("2017-06-13 00:00:00 UTC"), and each row
// keeps the global position of the event that put it there, which orders
// the lists.
//
// The projectors are versioned (see package projector): each version's
// tables are named after it (outstanding_todos_v1), the queries read views
// named like the projectors (outstanding_todos) that point at the active
// version, and a new version — a change of a projector's tables or
// handlers, which must come with a raise of its version constant — or a
// rebuild of the current one is built beside the active version and
// swapped in once it has caught up, while the lists keep being served.
package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// The projectors' names: they identify their saved positions, so they never
// change. Each projector's main table (the view the queries read) has the
// same name.
const (
	OutstandingName = "outstanding_todos"
	ScheduledName   = "scheduled_todos"
	CompletedName   = "completed_todos"
)

// The projectors' versions. Raise a projector's version whenever its tables
// or its handlers change: the new version is then built beside the one
// that serves, and swapped in once it has caught up.
const (
	OutstandingVersion = 1
	ScheduledVersion   = 1
	CompletedVersion   = 1
)

// incompleteTable is the completed_todos projector's private table of the
// todos that may still be completed.
const incompleteTable = "completed_todos_incomplete"

// NewOutstanding returns the projector of the outstanding todos.
func NewOutstanding(store projector.Store, opts processing.Options) (*projector.Projector, error) {
	return newList(store, OutstandingName, OutstandingVersion, opts)
}

// NewScheduled returns the projector of the scheduled todos. It keeps the
// same rows as the outstanding one, in its own table: the scheduled query
// picks those with a due date.
func NewScheduled(store projector.Store, opts processing.Options) (*projector.Projector, error) {
	return newList(store, ScheduledName, ScheduledVersion, opts)
}

// newList returns a projector that keeps the outstanding todos in the table
// named like it (the view of its active version's).
func newList(store projector.Store, name string, version int, opts processing.Options) (*projector.Projector, error) {
	p, err := projector.New(store, name, projector.Options{
		Processing: opts,
		Version:    version,
		Tables:     []string{name},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return createTable(tx, projector.Table(ctx, name), "added_position")
		},
	})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Added) error {
			row, err := addedRow(e, d)
			if err != nil {
				return err
			}
			row["added_position"] = e.Position
			return tx.Table(projector.Table(ctx, name)).Create(row).Error
		}),
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Amended) error {
			return amend(tx, projector.Table(ctx, name), e, d)
		}),
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, _ todo.Completed) error {
			return remove(tx, projector.Table(ctx, name), e)
		}),
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, _ todo.Abandoned) error {
			return remove(tx, projector.Table(ctx, name), e)
		}),
	); err != nil {
		return nil, err
	}
	return p, nil
}

// NewCompleted returns the projector of the completed todos.
func NewCompleted(store projector.Store, opts processing.Options) (*projector.Projector, error) {
	p, err := projector.New(store, CompletedName, projector.Options{
		Processing: opts,
		Version:    CompletedVersion,
		Tables:     []string{CompletedName, incompleteTable},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			if err := createTable(tx, projector.Table(ctx, incompleteTable), ""); err != nil {
				return err
			}
			return createTable(tx, projector.Table(ctx, CompletedName), "completed_position", "completed_on text NOT NULL")
		},
	})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Added) error {
			row, err := addedRow(e, d)
			if err != nil {
				return err
			}
			return tx.Table(projector.Table(ctx, incompleteTable)).Create(row).Error
		}),
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Amended) error {
			return amend(tx, projector.Table(ctx, incompleteTable), e, d)
		}),
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, _ todo.Abandoned) error {
			return remove(tx, projector.Table(ctx, incompleteTable), e)
		}),
		projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d todo.Completed) error {
			completedOn, err := renderDate(todo.Text(d.CompletedOn))
			if err != nil {
				return err
			}
			// Move the row, with its latest values, into the completed table.
			incomplete := projector.Table(ctx, incompleteTable)
			err = tx.Exec(`INSERT INTO `+projector.Table(ctx, CompletedName)+` (todo_id, completed_position, title, description, due_date, stakeholder_email, completed_on)
			SELECT todo_id, ?, title, description, due_date, stakeholder_email, ? FROM `+incomplete+` WHERE todo_id = ?`,
				e.Position, completedOn, todo.IDFromStream(e.StreamID)).Error
			if err != nil {
				return err
			}
			return remove(tx, incomplete, e)
		}),
	); err != nil {
		return nil, err
	}
	return p, nil
}

// createTable creates a table of todos (a version's: its physical name),
// ordered by the position column when there is one, with the extra columns
// given.
func createTable(tx *gorm.DB, table, positionColumn string, extra ...string) error {
	columns := "todo_id text PRIMARY KEY, title text, description text, due_date text, stakeholder_email text"
	if positionColumn != "" {
		columns += ", " + positionColumn + " bigint NOT NULL"
	}
	for _, c := range extra {
		columns += ", " + c
	}
	if err := tx.Exec(`CREATE TABLE IF NOT EXISTS ` + table + ` (` + columns + `)`).Error; err != nil {
		return err
	}
	if positionColumn == "" {
		return nil
	}
	return tx.Exec(`CREATE INDEX IF NOT EXISTS ` + table + `_` + positionColumn + ` ON ` + table + ` (` + positionColumn + `)`).Error
}

// addedRow returns the columns of a newly added todo.
func addedRow(e event.Event, d todo.Added) (map[string]any, error) {
	dueDate, err := renderDate(d.DueDate)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"todo_id":           todo.IDFromStream(e.StreamID),
		"title":             d.Title,
		"description":       d.Description.Value(),
		"due_date":          dueDate,
		"stakeholder_email": d.StakeholderEmail.Value(),
	}, nil
}

// amend updates the columns of the fields the amend sent (a null sets
// NULL). An amend that sent none of them changes nothing: no statement is
// run at all.
func amend(tx *gorm.DB, table string, e event.Event, d todo.Amended) error {
	set := map[string]any{}
	if d.Title.Sent() {
		set["title"] = d.Title.Value()
	}
	if d.Description.Sent() {
		set["description"] = d.Description.Value()
	}
	if d.DueDate.Sent() {
		dueDate, err := renderDate(d.DueDate)
		if err != nil {
			return err
		}
		set["due_date"] = dueDate
	}
	if d.StakeholderEmail.Sent() {
		set["stakeholder_email"] = d.StakeholderEmail.Value()
	}
	if len(set) == 0 {
		return nil
	}
	return tx.Table(table).Where("todo_id = ?", todo.IDFromStream(e.StreamID)).Updates(set).Error
}

func remove(tx *gorm.DB, table string, e event.Event) error {
	return tx.Exec(`DELETE FROM `+table+` WHERE todo_id = ?`, todo.IDFromStream(e.StreamID)).Error
}

// shownDateLayout is how the read models store and the API shows dates.
const shownDateLayout = "2006-01-02 15:04:05 UTC"

// renderDate returns a date field as the API shows it, in UTC to the
// second, or nil when the field is null or absent. The commands let only
// valid dates into the events, so an error here means data written by
// something else: the projector stops on it and retries, rather than skip it.
func renderDate(f todo.Field) (any, error) {
	s, ok := f.Get()
	if !ok {
		return nil, nil
	}
	t, err := todo.ParseDate(s)
	if err != nil {
		return nil, fmt.Errorf("date %q: %w", s, err)
	}
	return t.Truncate(time.Second).Format(shownDateLayout), nil
}
