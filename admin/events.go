package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"time"
	"unicode/utf8"

	"github.com/cairnhq/cairn/eventstore"
)

// StreamLine is a line of the streams command's JSON output.
type StreamLine struct {
	Stream          string    `json:"stream"`
	Version         int64     `json:"version"`
	FirstRecordedAt time.Time `json:"first_recorded_at"`
	LastRecordedAt  time.Time `json:"last_recorded_at"`
}

func runStreams(ctx context.Context, c *cli, _ []string) error {
	if c.o.limit < 0 {
		return usagef("streams: --limit must not be negative")
	}
	tw := c.table()
	if !c.o.json {
		fmt.Fprintln(tw, "STREAM\tVERSION\tFIRST RECORDED\tLAST RECORDED")
	}
	n := 0
	for st, err := range c.store.Streams(ctx, c.o.streamPrefix, c.o.limit) {
		if err != nil {
			return err
		}
		n++
		if c.o.json {
			if err := c.emit(StreamLine{st.StreamID, st.Version, st.FirstRecordedAt.UTC(), st.LastRecordedAt.UTC()}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", st.StreamID, st.Version, timeText(st.FirstRecordedAt), timeText(st.LastRecordedAt))
	}
	if c.o.json {
		return nil
	}
	if n == 0 {
		tw.Flush()
		_, err := fmt.Fprintln(c.stdout, "no streams")
		return err
	}
	return tw.Flush()
}

// EventLine is a line of the events command's JSON output: an event as
// stored. Data and Metadata are the stored JSON; data that is not JSON
// (another codec's) is in DataBase64 instead.
type EventLine struct {
	Position      int64           `json:"position"`
	ID            string          `json:"id"`
	Stream        string          `json:"stream"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data,omitempty"`
	DataBase64    string          `json:"data_base64,omitempty"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
}

func eventLine(e eventstore.RawEvent) EventLine {
	l := EventLine{
		Position: e.Position, ID: e.ID.String(), Stream: e.StreamID, Version: e.Version, Type: e.Type,
		SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt.UTC(), CausationID: e.CausationID, CorrelationID: e.CorrelationID,
	}
	if isJSON(e.Data) {
		l.Data = e.Data
	} else {
		l.DataBase64 = base64.StdEncoding.EncodeToString(e.Data)
	}
	if isJSON(e.Metadata) {
		l.Metadata = e.Metadata
	}
	return l
}

func isJSON(b []byte) bool { return len(b) > 0 && utf8.Valid(b) && json.Valid(b) }

// dataText is event data for a text line: compact JSON as stored, or
// base64 for data of another codec.
func dataText(b []byte) string {
	if isJSON(b) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err == nil {
			return buf.String()
		}
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

func runEvents(ctx context.Context, c *cli, args []string) error {
	f := eventstore.RawFilter{Types: c.o.types, CorrelationID: c.o.correlation}
	if len(args) == 1 {
		f.StreamID = args[0]
		// A deleted or misspelt stream says so, rather than printing
		// nothing.
		v, err := c.store.StreamVersion(ctx, f.StreamID)
		if err != nil {
			return err
		}
		if v == 0 && !c.o.follow {
			return fmt.Errorf("stream %q has no events", f.StreamID)
		}
	}
	var seq iter.Seq2[eventstore.RawEvent, error]
	if c.o.follow {
		seq = c.store.SubscribeRaw(ctx, c.o.after, f)
	} else {
		seq = c.store.ReadRaw(ctx, c.o.after, c.o.limit, f)
	}
	n := 0
	for e, err := range seq {
		if err != nil {
			return err
		}
		if c.o.json {
			if err := c.emit(eventLine(e)); err != nil {
				return err
			}
		} else if _, err := fmt.Fprintf(c.stdout, "%d %s %d %s %s %s\n",
			e.Position, e.StreamID, e.Version, e.Type, e.RecordedAt.UTC().Format(time.RFC3339Nano), dataText(e.Data)); err != nil {
			return err
		}
		n++
		if c.o.limit > 0 && n >= c.o.limit {
			return nil
		}
	}
	return nil
}
