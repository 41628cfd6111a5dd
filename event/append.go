package event

import (
	"context"
	"iter"
	"time"

	"github.com/google/uuid"
)

// AppendOptions are the optional parts of an append, set by [AppendOption]
// functions.
type AppendOptions struct {
	// Metadata is recorded with every event of the append.
	Metadata map[string]string
	// CausationID and CorrelationID are recorded with every event.
	CausationID   string
	CorrelationID string
	// IDs gives the events their IDs, one per event in order. Without it
	// the store generates random ones. With it, an append whose events
	// are all stored already at the place it would put them is a no-op
	// that returns the stored events (an idempotent retry).
	IDs []uuid.UUID
}

// AppendOption sets a part of [AppendOptions].
type AppendOption func(*AppendOptions)

// WithMetadata records m with every event of the append. Keys set by an
// earlier WithMetadata are kept unless m sets them too.
func WithMetadata(m map[string]string) AppendOption {
	return func(o *AppendOptions) {
		if len(m) == 0 {
			return
		}
		if o.Metadata == nil {
			o.Metadata = make(map[string]string, len(m))
		}
		for k, v := range m {
			o.Metadata[k] = v
		}
	}
}

// WithCausationID records id as the causation ID of every event.
func WithCausationID(id string) AppendOption {
	return func(o *AppendOptions) { o.CausationID = id }
}

// WithCorrelationID records id as the correlation ID of every event.
func WithCorrelationID(id string) AppendOption {
	return func(o *AppendOptions) { o.CorrelationID = id }
}

// WithIDs gives the events of the append these IDs, one per event in order.
// Giving a different number of IDs than events is an error.
func WithIDs(ids ...uuid.UUID) AppendOption {
	ids = append(make([]uuid.UUID, 0, len(ids)), ids...) // non-nil even when empty
	return func(o *AppendOptions) { o.IDs = ids }
}

// Appender appends events to a stream. *eventstore.Store implements it.
type Appender interface {
	// Append stores events at the end of the stream if its version
	// satisfies expected, atomically, and returns them as recorded.
	Append(ctx context.Context, streamID string, expected ExpectedVersion, events []any, opts ...AppendOption) ([]Event, error)
}

// StreamReader reads one stream in version order. *eventstore.Store
// implements it.
type StreamReader interface {
	// ReadStream yields the stream's events from version from (inclusive;
	// 0 or 1 is the start) onwards, at most limit of them (0: no limit).
	ReadStream(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[Event, error]
}

// Snapshot is an aggregate's state stored at a version of its stream, so a
// load can start there instead of at the first event.
type Snapshot struct {
	StreamID string
	// Version is the stream version the state reflects.
	Version int64
	// SchemaVersion is the version of the state's shape; a loader ignores
	// snapshots of a schema version other than its own.
	SchemaVersion int
	// Data is the encoded state.
	Data       []byte
	RecordedAt time.Time
}

// Batch is a run of events read in position order, with the position the
// read covered: Through is at least the position of the last event, and
// more when the read also passed events it was not asked for (of other
// types) or holes. A reader that has handled the batch can resume after
// Through.
type Batch struct {
	Events  []Event
	Through int64
}
