package aggregate

import (
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/event"
)

// Errors that callers branch on with [errors.Is]. They are wrapped with the
// aggregate type and, where it applies, the method and the event type.
var (
	// ErrMissingHandler reports an event for which the aggregate has no
	// handler: no exported On… method taking the event's type.
	ErrMissingHandler = errors.New("aggregate: missing event handler")
	// ErrInvalidHandler reports an On… method that cannot be a handler: not
	// func(EventType) or func(EventType) error on a pointer receiver, a
	// second handler for one event type, or a handler of an event type
	// that the store's registry does not know.
	ErrInvalidHandler = errors.New("aggregate: invalid event handler")
	// ErrNoRoot reports an aggregate type that does not embed [Root] by
	// value, or a nil aggregate.
	ErrNoRoot = errors.New("aggregate: no aggregate.Root")
	// ErrNoID reports a save of an aggregate that has changes but no ID:
	// one made with new(T) or &T{} rather than loaded by a [Repository] or
	// made by [New].
	ErrNoID = errors.New("aggregate: no ID")
	// ErrNotSnapshotter reports a [Repository] with snapshots on for an
	// aggregate type that does not implement [Snapshotter].
	ErrNotSnapshotter = errors.New("aggregate: not a Snapshotter")
)

// streamError wraps err, the failure of op ("load", "save") on stream,
// naming the stream unless err names it already.
func streamError(op, stream string, err error) error {
	if namesStream(err, stream) {
		return fmt.Errorf("aggregate: %s: %w", op, err)
	}
	return fmt.Errorf("aggregate: %s %q: %w", op, stream, err)
}

// namesStream reports whether err carries a typed error of package event
// that names stream.
func namesStream(err error, stream string) bool {
	if vc, ok := errors.AsType[*event.VersionConflictError](err); ok && vc.StreamID == stream {
		return true
	}
	if de, ok := errors.AsType[*event.DecodeError](err); ok && de.StreamID == stream && de.Position > 0 {
		return true
	}
	return false
}
