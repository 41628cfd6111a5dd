package todo

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
)

// Add adds todo ID. The title is required (an empty string is allowed);
// the other fields are optional and nullable.
type Add struct {
	ID               string
	Title            Field
	Description      Field
	DueDate          Field
	StakeholderEmail Field
}

// Amend changes the fields of todo ID that it carries, and only those.
type Amend struct {
	ID               string
	Title            Field
	Description      Field
	DueDate          Field
	StakeholderEmail Field
}

// Complete completes todo ID on the date CompletedOn (required).
type Complete struct {
	ID          string
	CompletedOn Field
}

// Abandon abandons todo ID on the date AbandonedOn (required).
type Abandon struct {
	ID          string
	AbandonedOn Field
}

// FieldError reports a command field that is missing or malformed, before
// the todo is even loaded: "title is blank", "due_date is invalid".
type FieldError struct {
	// Field is the field's name in the API: title, due_date, todo_id, ….
	Field string
	// Problem is "is blank" or "is invalid".
	Problem string
}

// The problems of a FieldError.
const (
	Blank   = "is blank"
	Invalid = "is invalid"
)

func (e *FieldError) Error() string { return e.Field + " " + e.Problem }

// Validate reports the first problem of the command's fields: the ID, then
// the required fields, then each field in turn. The Validation middleware of
// the command dispatcher calls it before the handler, and so for the other
// commands.
func (c Add) Validate() error {
	return firstError(checkID(c.ID), required("title", c.Title),
		text("title", c.Title), text("description", c.Description),
		date("due_date", c.DueDate), text("stakeholder_email", c.StakeholderEmail))
}

// Validate reports the first problem of the command's fields.
func (c Amend) Validate() error {
	return firstError(checkID(c.ID),
		text("title", c.Title), text("description", c.Description),
		date("due_date", c.DueDate), text("stakeholder_email", c.StakeholderEmail))
}

// Validate reports the first problem of the command's fields.
func (c Complete) Validate() error {
	return firstError(checkID(c.ID), required("completed_on", c.CompletedOn), date("completed_on", c.CompletedOn))
}

// Validate reports the first problem of the command's fields.
func (c Abandon) Validate() error {
	return firstError(checkID(c.ID), required("abandoned_on", c.AbandonedOn), date("abandoned_on", c.AbandonedOn))
}

var (
	_ command.Validator = Add{}
	_ command.Validator = Amend{}
	_ command.Validator = Complete{}
	_ command.Validator = Abandon{}
)

// ValidID reports whether id is a UUID in its canonical textual form
// (8-4-4-4-12 hexadecimal digits, lower case), the form todo IDs take.
func ValidID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

func checkID(id string) error {
	if !ValidID(id) {
		return &FieldError{Field: "todo_id", Problem: Invalid}
	}
	return nil
}

func required(name string, f Field) error {
	if _, ok := f.Get(); !ok {
		return &FieldError{Field: name, Problem: Blank}
	}
	return nil
}

// text rejects a string with a NUL character, which PostgreSQL cannot store
// in a text column: let into an event, it would stall the projections there.
func text(name string, f Field) error {
	if s, ok := f.Get(); ok && strings.ContainsRune(s, 0) {
		return &FieldError{Field: name, Problem: Invalid}
	}
	return nil
}

// date accepts a field that is absent, null, or a date ParseDate takes.
func date(name string, f Field) error {
	if s, ok := f.Get(); ok {
		if _, err := ParseDate(s); err != nil {
			return &FieldError{Field: name, Problem: Invalid}
		}
	}
	return nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Repository is where Todos are loaded from and saved to.
type Repository = aggregate.Repository[Todo]

// NewRepository returns the repository of Todos in store, each in the stream
// named by StreamID. opts may turn snapshots on (SnapshotEvery; the schema
// version is SnapshotSchemaVersion) and give the repository its logger;
// their StreamID and SnapshotSchemaVersion are set here.
func NewRepository(store aggregate.Store, opts aggregate.Options) (*Repository, error) {
	opts.StreamID = StreamID
	opts.SnapshotSchemaVersion = SnapshotSchemaVersion
	return aggregate.NewRepository[Todo](store, AggregateType, opts)
}

// HandleCommands registers the handlers of the four commands with d. Each
// runs its command on the todo with command.Execute: load, decide, save,
// and on a concurrency conflict (another request saved the todo in
// between) load and decide again, a few times, before it gives up with an
// error matching event.ErrVersionConflict. Each returns what it wrote, so
// the dispatcher's caller learns the position of the command's events.
func HandleCommands(d *command.Dispatcher, todos command.Repository[Todo]) error {
	var opts command.ExecuteOptions // the defaults: 5 attempts, jittered backoff
	return firstError(
		command.Handle(d, func(ctx context.Context, c Add) (command.Result, error) {
			return command.Execute(ctx, todos, c.ID, func(t *Todo) error { return t.Add(c) }, opts)
		}),
		command.Handle(d, func(ctx context.Context, c Amend) (command.Result, error) {
			return command.Execute(ctx, todos, c.ID, func(t *Todo) error { return t.Amend(c) }, opts)
		}),
		command.Handle(d, func(ctx context.Context, c Complete) (command.Result, error) {
			return command.Execute(ctx, todos, c.ID, func(t *Todo) error { return t.Complete(c) }, opts)
		}),
		command.Handle(d, func(ctx context.Context, c Abandon) (command.Result, error) {
			return command.Execute(ctx, todos, c.ID, func(t *Todo) error { return t.Abandon(c) }, opts)
		}),
	)
}
