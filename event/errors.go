package event

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with [errors.Is]. The store wraps them with
// the details of the failing call.
var (
	// ErrVersionConflict reports that a stream's current version did not
	// satisfy an append's expected version. The error's chain holds a
	// [*VersionConflictError] with the details.
	ErrVersionConflict = errors.New("event: version conflict")
	// ErrStreamDeleted reports an append to, or a read of, a deleted stream.
	ErrStreamDeleted = errors.New("event: stream deleted")
	// ErrStreamNotFound reports an operation that needs an existing stream.
	ErrStreamNotFound = errors.New("event: stream not found")
	// ErrEventNotFound reports a read of an event that is not stored.
	ErrEventNotFound = errors.New("event: event not found")
	// ErrDuplicateEventID reports an append of an event whose ID is already
	// stored somewhere other than the place the append would put it.
	ErrDuplicateEventID = errors.New("event: duplicate event id")
	// ErrUnknownType reports event data of a Go type, or a stored type name,
	// that the registry does not know.
	ErrUnknownType = errors.New("event: unknown type")
)

// VersionConflictError details an [ErrVersionConflict]: the stream, the
// version the append expected and the version the stream was at.
type VersionConflictError struct {
	StreamID string
	Expected ExpectedVersion
	// Actual is the stream's version when the append was checked (0 for a
	// stream with no events).
	Actual int64
}

// Error describes the failure.
func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("event: version conflict on stream %q: expected %s, stream is at %d",
		e.StreamID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrVersionConflict) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// DecodeError reports stored data that could not be turned into a Go value:
// an unknown type name, a failing upcaster or data that does not fit the
// registered type. It names the type and, where known, the event's place.
type DecodeError struct {
	Type          string
	SchemaVersion int
	// Position, StreamID and Version locate the event; Position is 0 when
	// the data was not read from a store.
	Position int64
	StreamID string
	Version  int64
	Err      error
}

// Error describes the failure.
func (e *DecodeError) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("event: decode %q (schema %d) at position %d (stream %q, version %d): %v",
			e.Type, e.SchemaVersion, e.Position, e.StreamID, e.Version, e.Err)
	}
	return fmt.Sprintf("event: decode %q (schema %d): %v", e.Type, e.SchemaVersion, e.Err)
}

// Unwrap returns the cause, which may be [ErrUnknownType].
func (e *DecodeError) Unwrap() error { return e.Err }
