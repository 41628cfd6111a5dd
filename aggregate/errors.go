package aggregate

import "errors"

// Errors that callers branch on with [errors.Is]. They are wrapped with the
// aggregate type, the event type and the method that was expected.
var (
	// ErrMissingHandler reports an event for which the aggregate has no
	// exported On<EventType> method.
	ErrMissingHandler = errors.New("aggregate: missing event handler")
	// ErrInvalidHandler reports an On<EventType> method whose signature is
	// not func(EventType) or func(EventType) error on a pointer receiver.
	ErrInvalidHandler = errors.New("aggregate: invalid event handler")
	// ErrNoRoot reports an aggregate type that does not embed [Root] by
	// value, or an aggregate value whose Root was not set up by [New] or a
	// [Repository] (or was copied since).
	ErrNoRoot = errors.New("aggregate: no bound aggregate.Root")
)
