package event

import (
	"time"

	"github.com/google/uuid"
)

// Event is a recorded event: the user's data together with where and when
// it was stored.
//
// Events returned by a store are values owned by the caller; Data holds the
// decoded Go value of the registered type (a value, not a pointer, unless the
// type was registered as a pointer type).
type Event struct {
	// Position is the event's place in the store's global order. Positions
	// increase with commit order but need not be contiguous: an append that
	// failed or was rolled back can leave holes.
	Position int64
	// ID identifies the event uniquely across the store.
	ID uuid.UUID
	// StreamID names the stream the event belongs to.
	StreamID string
	// Version is the event's place in its stream: 1, 2, 3, … without holes.
	Version int64
	// Type is the persisted type name given at registration.
	Type string
	// Data is the decoded event value.
	Data any
	// Metadata holds free-form string pairs recorded with the event. It is
	// nil when the event has none.
	Metadata map[string]string
	// CausationID is the ID of the message (command or event) that caused
	// this event, or empty.
	CausationID string
	// CorrelationID ties together every message of one conversation, or is
	// empty.
	CorrelationID string
	// RecordedAt is when the store recorded the event (microsecond
	// precision, UTC).
	RecordedAt time.Time
}
