package event

import (
	"strconv"
	"strings"
)

// StreamFilter limits a reader of every stream — an event stream
// processor, a batched subscription — to one stream or to a category of
// streams: those whose IDs start with a prefix, such as "todo-". The zero
// value selects every stream. Set at most one of its fields.
//
// A filter only selects events; the reader's position still moves past
// the events of other streams, as it does past events of types it does
// not read.
type StreamFilter struct {
	// ID, when not empty, selects the one stream with this ID.
	ID string
	// Prefix, when not empty, selects the streams whose IDs start with
	// it, byte for byte (case matters).
	Prefix string
}

// OneStream returns the filter that selects the stream id.
func OneStream(id string) StreamFilter { return StreamFilter{ID: id} }

// Category returns the filter that selects the streams whose IDs start
// with prefix.
func Category(prefix string) StreamFilter { return StreamFilter{Prefix: prefix} }

// All reports whether f selects every stream: it is the zero value.
func (f StreamFilter) All() bool { return f.ID == "" && f.Prefix == "" }

// Match reports whether f selects the stream streamID.
func (f StreamFilter) Match(streamID string) bool {
	switch {
	case f.ID != "":
		return streamID == f.ID
	case f.Prefix != "":
		return strings.HasPrefix(streamID, f.Prefix)
	}
	return true
}

// String describes f: "all streams", `stream "x"` or `streams "x…"`.
func (f StreamFilter) String() string {
	switch {
	case f.ID != "" && f.Prefix != "":
		return "stream " + strconv.Quote(f.ID) + " and streams " + strconv.Quote(f.Prefix+"…")
	case f.ID != "":
		return "stream " + strconv.Quote(f.ID)
	case f.Prefix != "":
		return "streams " + strconv.Quote(f.Prefix+"…")
	}
	return "all streams"
}
