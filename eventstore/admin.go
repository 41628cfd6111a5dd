package eventstore

import (
	"context"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// This file holds what operating tools (package admin, cmd/cairn) need of
// the store beyond the application's API: reads that no registry can
// refuse, a listing of streams, moving a processor's position, and
// dropping a scratch store's tables.

// RawEvent is an event as stored, without decoding: what [Store.ReadRaw]
// and [Store.SubscribeRaw] yield. A tool that does not have the
// application's Go types shows it as it is; one that does decodes Data
// with its registry ([event.Registry.Decode]) to check it.
type RawEvent struct {
	Position      int64
	ID            uuid.UUID
	StreamID      string
	Version       int64
	Type          string
	SchemaVersion int
	// Data is the event data as the codec wrote it (JSON by default).
	Data []byte
	// Metadata is the stored metadata, a JSON object of strings, or nil.
	Metadata      []byte
	CausationID   string
	CorrelationID string
	RecordedAt    time.Time
}

// RawFilter narrows a raw read. The zero value reads every event.
type RawFilter struct {
	// StreamID, if set, reads only that stream's events.
	StreamID string
	// Types, if set, reads only events of these type names.
	Types []string
	// CorrelationID, if set, reads only events with this correlation ID.
	// No index serves it: the read scans the events after its position.
	CorrelationID string
}

func (f RawFilter) validate() error {
	if f.StreamID != "" {
		if err := validStreamID(f.StreamID); err != nil {
			return err
		}
	}
	for _, t := range f.Types {
		if err := validText("type name", t); err != nil {
			return err
		}
	}
	return validText("correlation ID", f.CorrelationID)
}

// rawSQL returns the query of a raw read with filter f and its arguments
// but the last, the limit. Parameters: after, the head when bounded, then
// the filter's values, then the limit.
func (q *queries) rawSQL(f RawFilter, after int64, head int64, bounded bool) (string, []any) {
	var b strings.Builder
	args := []any{after}
	b.WriteString("SELECT " + eventColumns + " FROM " + q.t.events + " WHERE position > " + q.p(1))
	if bounded {
		args = append(args, head)
		b.WriteString(" AND position <= " + q.p(len(args)))
	} else {
		b.WriteString(q.below) // OrderingXID's horizon
	}
	if f.StreamID != "" {
		args = append(args, f.StreamID)
		b.WriteString(" AND stream_id = " + q.p(len(args)))
	}
	if len(f.Types) > 0 {
		b.WriteString(" AND type IN (")
		for i, t := range f.Types {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, t)
			b.WriteString(q.p(len(args)))
		}
		b.WriteString(")")
	}
	if f.CorrelationID != "" {
		args = append(args, f.CorrelationID)
		b.WriteString(" AND correlation_id = " + q.p(len(args)))
	}
	b.WriteString(" ORDER BY position LIMIT " + q.p(len(args)+1))
	return b.String(), args
}

// ReadRaw yields the events after a position that pass f, in position
// order, at most limit of them (0 means no limit), as stored: nothing is
// decoded, so an event of an unknown type or with data that no longer
// decodes is yielded like any other. It pages like [Store.ReadAll]. An
// error ends the sequence: it is yielded with a zero RawEvent.
func (s *Store) ReadRaw(ctx context.Context, after int64, limit int, f RawFilter) iter.Seq2[RawEvent, error] {
	return func(yield func(RawEvent, error) bool) {
		op := "read raw after " + strconv.FormatInt(after, 10)
		if after < 0 || limit < 0 {
			yield(RawEvent{}, fail(op, "", "", invalid("negative position (%d) or limit (%d)", after, limit)))
			return
		}
		if err := f.validate(); err != nil {
			yield(RawEvent{}, fail(op, "", "", err))
			return
		}
		if s.hz != nil {
			// Wait until what was committed before the call is readable.
			if _, err := s.hz.head(ctx); err != nil {
				yield(RawEvent{}, fail(op, "", "", err))
				return
			}
		}
		last, sent := after, 0
		for {
			want, fetch := pageSize(s.opts.PageSize, limit, sent)
			q, args := s.q.rawSQL(f, last, 0, false)
			page, err := s.readRawPage(ctx, q, append(args, fetch))
			if err != nil {
				yield(RawEvent{}, fail(op, "", "", err))
				return
			}
			more := len(page) > want
			if more {
				page = page[:want]
			}
			for _, e := range page {
				sent++
				last = e.Position
				if !yield(e, nil) {
					return
				}
			}
			if !more {
				return
			}
		}
	}
}

// SubscribeRaw is [Store.Subscribe] for raw events: it yields the events
// after a position that pass f, as stored, first those stored already and
// then new ones as they are committed, until ctx ends; it then yields
// ctx's error with a zero RawEvent. Like Subscribe it reads only up to the
// head it saw, relying on the store's commit order, wakes on this store's
// appends and on PostgreSQL's notifications, polls every
// Options.PollInterval, and reads again after a lost connection.
func (s *Store) SubscribeRaw(ctx context.Context, after int64, f RawFilter) iter.Seq2[RawEvent, error] {
	return func(yield func(RawEvent, error) bool) {
		op := "subscribe raw after " + strconv.FormatInt(after, 10)
		fail := func(err error) {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = fail(op, "", "", err)
			}
			yield(RawEvent{}, err)
		}
		if after < 0 {
			fail(invalid("negative position %d", after))
			return
		}
		if err := f.validate(); err != nil {
			fail(err)
			return
		}
		wake := s.newWaker()
		defer wake.stop()
		retry := reconnect{log: s.opts.Logger}
		last := after
		for {
			// Take the wake-up channels before reading, so a commit that
			// lands during the read is not missed.
			wake.arm()
			for {
				page, through, err := s.readRawBatch(ctx, last, f)
				if err != nil {
					if retry.again(ctx, translate(err)) {
						continue
					}
					fail(err)
					return
				}
				retry.tries = 0
				for _, e := range page {
					if !yield(e, nil) {
						return
					}
				}
				if through == last {
					break
				}
				last = through
				if len(page) < s.opts.PageSize {
					break
				}
			}
			if err := wake.wait(ctx); err != nil {
				yield(RawEvent{}, err)
				return
			}
		}
	}
}

// readRawBatch reads a page of the events after a position up to the
// head, and returns how far the read went: the head when the page is not
// full (as [Store.ReadBatch] does).
func (s *Store) readRawBatch(ctx context.Context, after int64, f RawFilter) ([]RawEvent, int64, error) {
	head, err := s.Head(ctx)
	if err != nil || head <= after {
		return nil, after, err
	}
	q, args := s.q.rawSQL(f, after, head, true)
	page, err := s.readRawPage(ctx, q, append(args, s.opts.PageSize))
	if err != nil {
		return nil, after, err
	}
	if len(page) < s.opts.PageSize {
		return page, head, nil
	}
	return page, page[len(page)-1].Position, nil
}

func (s *Store) readRawPage(ctx context.Context, q string, args []any) ([]RawEvent, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]RawEvent, 0, pageCap(args))
	for rows.Next() {
		var (
			e        RawEvent
			recorded timeValue
		)
		if err := rows.Scan(&e.Position, &e.ID, &e.StreamID, &e.Version, &e.Type, &e.SchemaVersion, &e.Data, &e.Metadata,
			&e.CausationID, &e.CorrelationID, &recorded); err != nil {
			return nil, err
		}
		e.RecordedAt = recorded.t
		page = append(page, e)
	}
	return page, rows.Err()
}

// StreamInfo describes a stream that holds events.
type StreamInfo struct {
	StreamID string
	// Version is the version of its last event.
	Version int64
	// FirstRecordedAt and LastRecordedAt are when its first and last
	// stored events were recorded.
	FirstRecordedAt time.Time
	LastRecordedAt  time.Time
}

// Streams yields the streams that hold events and whose IDs start with
// prefix (all when it is empty), ordered by stream ID, at most limit of
// them (0 means no limit). Deleted streams hold no events and are not
// listed. It reads a page of streams per query, grouping their events: a
// tool's listing, not a query for an application's hot path.
func (s *Store) Streams(ctx context.Context, prefix string, limit int) iter.Seq2[StreamInfo, error] {
	return func(yield func(StreamInfo, error) bool) {
		fail := func(err error) { yield(StreamInfo{}, fail("list streams", "", "", err)) }
		if limit < 0 {
			fail(invalid("negative limit %d", limit))
			return
		}
		if err := validText("stream ID prefix", prefix); err != nil {
			fail(err)
			return
		}
		p := s.q.p
		// substr and length count characters on both databases; a range
		// on stream_id would depend on PostgreSQL's collation.
		q := "SELECT stream_id, MAX(version), MIN(recorded_at), MAX(recorded_at) FROM " + s.q.t.events +
			" WHERE stream_id > " + p(1) + " AND substr(stream_id, 1, length(" + p(2) + ")) = " + p(2) +
			" GROUP BY stream_id ORDER BY stream_id LIMIT " + p(3)
		last, sent := "", 0
		for {
			want, fetch := pageSize(s.opts.PageSize, limit, sent)
			page, err := s.streamsPage(ctx, q, last, prefix, fetch)
			if err != nil {
				fail(err)
				return
			}
			more := len(page) > want
			if more {
				page = page[:want]
			}
			for _, st := range page {
				sent++
				last = st.StreamID
				if !yield(st, nil) {
					return
				}
			}
			if !more {
				return
			}
		}
	}
}

func (s *Store) streamsPage(ctx context.Context, q, after, prefix string, n int) ([]StreamInfo, error) {
	rows, err := s.db.QueryContext(ctx, q, after, prefix, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []StreamInfo
	for rows.Next() {
		var st StreamInfo
		var first, lastAt timeValue
		if err := rows.Scan(&st.StreamID, &st.Version, &first, &lastAt); err != nil {
			return nil, err
		}
		st.FirstRecordedAt, st.LastRecordedAt = first.t, lastAt.t
		page = append(page, st)
	}
	return page, rows.Err()
}

// MovePosition sets the saved position of the processor name to position
// and bumps its epoch, as [Store.ResetPosition] does for position 0: an
// instance of the processor running anywhere is fenced (its next save
// fails) and, under a lease, starts again from the new position. It
// reports false when the processor has no row. The processor's parked
// events after position are forgotten, in the same transaction: it reads
// them again. Moving a projector's
// position without resetting its tables leaves them wrong: reset a
// projector through its own Reset.
func (s *Store) MovePosition(ctx context.Context, name string, position int64) (moved bool, err error) {
	if position < 0 {
		return false, fail("move position", name, "", invalid("negative position %d", position))
	}
	q := "UPDATE " + s.q.t.positions + " SET position = " + s.q.p(2) + ", epoch = epoch + 1 WHERE name = " + s.q.p(1)
	moved, err = s.withParkedAfter(ctx, name, position, func(ex execer) (bool, error) {
		res, err := ex.ExecContext(ctx, q, name, position)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	})
	if err != nil {
		return false, fail("move position", name, "", err)
	}
	return moved, nil
}

// createTable finds the tables a schema statement creates.
var createTable = regexp.MustCompile(`(?i)^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+([A-Za-z0-9_.]+)`)

// DropTables drops every table of the store — its events, streams,
// snapshots, processor positions and whatever else [Store.Migrate]
// creates — with everything in them, under the migration lock. It is
// meant for scratch stores under a table prefix of their own (the admin
// command's verify-order); on an application's store it destroys the
// application's history.
func (s *Store) DropTables(ctx context.Context) error {
	var drops []string
	for _, stmt := range s.d.schema() {
		if m := createTable.FindStringSubmatch(stmt); m != nil {
			drops = append(drops, "DROP TABLE IF EXISTS "+m[1])
		}
	}
	slices.Reverse(drops)
	if err := s.d.migrate(ctx, drops); err != nil {
		return fail("drop tables", "", "", err)
	}
	return nil
}

// TablePrefix returns the prefix of the store's table names.
func (s *Store) TablePrefix() string { return s.opts.TablePrefix }
