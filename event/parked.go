package event

import "time"

// Parked is an event that an event stream processor has set aside
// ("parked") instead of handling it, as the store records it: an event
// its handlers kept failing on, or one parked behind such an event of its
// stream so that the stream's events are never handled out of order. The
// event itself stays where it is in the store; Parked says which it is
// (Position) and why it was set aside. The store, the processing package
// and the admin tooling share this record.
type Parked struct {
	// Processor is the name of the processor that parked the event.
	Processor string
	// Position, StreamID, Version and Type name the event.
	Position int64
	StreamID string
	Version  int64
	Type     string
	// Error is the error of the last attempt at the event; empty for an
	// event parked behind another that was never attempted.
	Error string
	// Attempts counts the attempts at the event that failed: those of the
	// processor before it parked it, and those of every failed retry
	// since. It is 0 for an event parked behind another.
	Attempts int
	// FirstFailedAt is when the first attempt at the event failed (for an
	// event parked behind another: when it was parked), LastFailedAt
	// when the last one did.
	FirstFailedAt, LastFailedAt time.Time
	// WaitsOn is 0 for an event parked because its handling failed. For
	// an event parked behind another, it is the position of the parked
	// event of its stream it waits on: the stream's first parked event
	// when it was parked (which may since have been retried or skipped:
	// the stream's parked events are retried in order, whatever WaitsOn
	// says).
	WaitsOn int64
}

// ParkedStream sums up the parked events of one stream of a processor.
type ParkedStream struct {
	StreamID string
	// First is the position of the stream's first parked event, the one
	// the others wait on.
	First int64
	// Count is the number of the stream's parked events.
	Count int
	// Since is the earliest FirstFailedAt of the stream's parked events.
	Since time.Time
}
