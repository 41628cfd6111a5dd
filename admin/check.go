package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cairnhq/cairn/eventstore"
)

// CheckLine is a line of the check command's JSON output. Record says
// which kind: "failure" (an event that does not decode: Position, Stream,
// Version, Type, SchemaVersion, Error), "type" (per event type: Type,
// Events, Failed, ReadBy) and, last, "summary" (Events, Types, Failed, OK,
// Unread: the stored types that no processor of the application reads).
type CheckLine struct {
	Record        string   `json:"record"`
	Position      int64    `json:"position,omitempty"`
	Stream        string   `json:"stream,omitempty"`
	Version       int64    `json:"version,omitempty"`
	Type          string   `json:"type,omitempty"`
	SchemaVersion int      `json:"schema_version,omitempty"`
	Error         string   `json:"error,omitempty"`
	Events        int64    `json:"events,omitempty"`
	Failed        int64    `json:"failed"`
	ReadBy        []string `json:"read_by,omitempty"`
	Types         int      `json:"types,omitempty"`
	OK            bool     `json:"ok"`
	Unread        []string `json:"unread,omitempty"`
}

// runCheck reads every stored event as stored and decodes it through the
// application's registry and upcasters, as its processors and aggregates
// would: the check to run before a release. Events that fail (an unknown
// type, a schema version without an upcaster, an upcaster's error, data
// or metadata that does not decode) are reported one by one, and fail the
// command. Stored types that no processor of the application reads are
// reported too, but are not failures: events that only aggregates read, or
// that record what happened for the record, are common.
func runCheck(ctx context.Context, c *cli, _ []string) error {
	reg := c.store.Registry()
	head, err := c.store.Head(ctx)
	if err != nil {
		return err
	}
	type stat struct{ events, failed int64 }
	stats := map[string]*stat{}
	var failed, total int64
	bar := c.progress("check", "positions", head)
	for e, err := range c.store.ReadRaw(ctx, 0, 0, eventstore.RawFilter{}) {
		if err != nil {
			bar.done()
			return err
		}
		total++
		st := stats[e.Type]
		if st == nil {
			st = &stat{}
			stats[e.Type] = st
		}
		st.events++
		derr := decodeRaw(reg.Decode, e)
		if derr != nil {
			st.failed++
			failed++
			l := CheckLine{Record: "failure", Position: e.Position, Stream: e.StreamID, Version: e.Version, Type: e.Type,
				SchemaVersion: e.SchemaVersion, Error: derr.Error()}
			if c.o.json {
				err = c.emit(l)
			} else {
				_, err = fmt.Fprintf(c.stdout, "FAILED position %d, stream %s (version %d), type %s (schema version %d): %v\n",
					l.Position, l.Stream, l.Version, l.Type, l.SchemaVersion, derr)
			}
			if err != nil {
				return err
			}
		}
		bar.set(e.Position)
	}
	bar.set(head)
	bar.done()

	types := make([]string, 0, len(stats))
	for t := range stats {
		types = append(types, t)
	}
	slices.Sort(types)
	var unread []string
	tw := c.table()
	if !c.o.json {
		fmt.Fprintln(tw, "TYPE\tEVENTS\tFAILED\tREAD BY")
	}
	for _, t := range types {
		readBy := c.readers(t)
		if len(readBy) == 0 {
			unread = append(unread, t)
		}
		if c.o.json {
			if err := c.emit(CheckLine{Record: "type", Type: t, Events: stats[t].events, Failed: stats[t].failed, ReadBy: readBy}); err != nil {
				return err
			}
			continue
		}
		by := strings.Join(readBy, ", ")
		if by == "" {
			by = "(no processor)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t, stats[t].events, stats[t].failed, by)
	}
	if c.o.json {
		if err := c.emit(CheckLine{Record: "summary", Events: total, Types: len(types), Failed: failed, OK: failed == 0, Unread: unread}); err != nil {
			return err
		}
	} else {
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "checked %d events of %d types: %d failed to decode\n", total, len(types), failed)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d events do not decode", ErrCheckFailed, failed, total)
	}
	return nil
}

// decodeRaw decodes a stored event's data with decode (the registry's)
// and its metadata, as the store's reads do.
func decodeRaw(decode func(string, int, []byte) (any, error), e eventstore.RawEvent) error {
	if len(e.Metadata) > 0 {
		var m map[string]string
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	_, err := decode(e.Type, e.SchemaVersion, e.Data)
	return err
}

// readers returns the names of the application's processors that read the
// event type.
func (c *cli) readers(typ string) []string {
	var out []string
	for _, p := range c.procs {
		ts := p.Types()
		if len(ts) == 0 || slices.Contains(ts, typ) {
			out = append(out, p.Name())
		}
	}
	return out
}
