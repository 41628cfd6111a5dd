package processing

import (
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/event"
)

var (
	// ErrFenced reports that a processor's saved position was changed by
	// someone else while it ran: the processor was reset, another owner
	// took it over, or another instance of it (same name) committed a
	// batch first. The batch is rolled back, and the processor stops at
	// once without retrying.
	ErrFenced = errors.New("processing: position changed by another owner")
	// ErrRunning reports a second Run of a processor that is running
	// already.
	ErrRunning = errors.New("processing: processor is running already")
	// ErrInvalid reports a processor that cannot run: an invalid name or
	// options, or no handlers.
	ErrInvalid = errors.New("processing: invalid processor")
)

// EventError reports the failure to handle one event, naming the event.
// Projectors and reactors wrap their handlers' errors in it, so the
// processor can log where it failed.
type EventError struct {
	Position int64
	StreamID string
	Type     string
	Err      error
}

// NewEventError returns an [*EventError] for the failure err of handling e.
func NewEventError(e event.Event, err error) *EventError {
	return &EventError{Position: e.Position, StreamID: e.StreamID, Type: e.Type, Err: err}
}

// Error describes the failure.
func (e *EventError) Error() string {
	return fmt.Sprintf("handle %q at position %d (stream %q): %v", e.Type, e.Position, e.StreamID, e.Err)
}

// Unwrap returns the handler's error.
func (e *EventError) Unwrap() error { return e.Err }

// PanicError is the error a recovered panic of a handler turns into.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
	// Stack is the panicking goroutine's stack trace.
	Stack []byte
}

// Error describes the failure.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns Value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// failedEvent locates the event an error is about, from an [*EventError]
// or an [*event.DecodeError] in its chain.
func failedEvent(err error) (position int64, stream, typ string) {
	if ee, ok := errors.AsType[*EventError](err); ok {
		return ee.Position, ee.StreamID, ee.Type
	}
	if de, ok := errors.AsType[*event.DecodeError](err); ok {
		return de.Position, de.StreamID, de.Type
	}
	return 0, "", ""
}
