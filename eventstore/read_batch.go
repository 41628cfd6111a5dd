package eventstore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
)

// readBatchWithHead is readBatch under OrderingLock, in one statement: the
// head and the batch's events come from one snapshot, and a processor's
// batch costs one round trip instead of two. (Under OrderingXID the head is
// the horizon's, which its own query bounds; readBatch keeps two there.)
//
// The statement is the batch's page UNION ALL one row holding the head (its
// event columns NULL), so it answers the head even when no event is
// selected; every event of the snapshot is at or below that head.
func (s *Store) readBatchWithHead(ctx context.Context, f event.StreamFilter, after int64, limit int, types []string) (b event.Batch, err error) {
	start := s.m.startRead(ctx)
	defer func() { s.m.readDone(ctx, readOfBatch, start, len(b.Events), err) }()
	tf := typesOf(types)
	args := tf.appendArgs(append(make([]any, 0, len(types)+4), after))
	if !f.All() {
		args = appendFilterArgs(args, f)
	}
	args = append(args, limit)
	b = event.Batch{Through: after}
	rows, err := s.db.QueryContext(ctx, s.q.readBatchWithHeadSQL(tf, f), args...)
	if err != nil {
		return b, fail("read batch after "+strconv.FormatInt(after, 10), "", "", err)
	}
	defer rows.Close()
	// partial ends a read that failed after some rows. The events before
	// the failure are a prefix of the page, valid: the caller sees them
	// with the error, as from the other reads, and Through is the last of
	// them, never past it (a subscription resumes after Through). Rows
	// that did not come in position order are no prefix: they are dropped
	// and the read starts again from after.
	partial := func(err error) (event.Batch, error) {
		if !slices.IsSortedFunc(b.Events, byPosition) {
			b.Events = nil
		}
		if n := len(b.Events); n > 0 {
			b.Through = b.Events[n-1].Position
		}
		return b, fail("read batch after "+strconv.FormatInt(b.Through, 10), "", "", err)
	}
	head := int64(-1)
	for rows.Next() {
		e, isHead, err := s.scanBatchRow(rows, nil)
		if err != nil {
			return partial(err)
		}
		if isHead {
			head = e.Position
			continue
		}
		if b.Events == nil {
			b.Events = make([]event.Event, 0, min(limit, 4096))
		}
		b.Events = append(b.Events, e)
	}
	if err := rows.Err(); err != nil {
		return partial(err)
	}
	if head < 0 {
		return b, fail("read batch after "+strconv.FormatInt(after, 10), "", "", errors.New("the statement returned no head row"))
	}
	// A UNION ALL keeps its branches' order in both databases, but SQL
	// does not promise it: make sure.
	if !slices.IsSortedFunc(b.Events, byPosition) {
		slices.SortFunc(b.Events, byPosition)
	}
	switch {
	case len(b.Events) == limit:
		b.Through = b.Events[len(b.Events)-1].Position
	case head > after:
		b.Through = head
	}
	return b, nil
}

func byPosition(a, b event.Event) int { return cmp.Compare(a.Position, b.Position) }

// readBatchWithHeadSQL is the statement of readBatchWithHead: parameters
// are after, the types' (tf.appendArgs), f's (appendFilterArgs), then the
// limit.
func (q *queries) readBatchWithHeadSQL(tf typeFilter, f event.StreamFilter) string {
	p := q.p
	s, n := q.typesAndStreams("SELECT "+eventColumns+" FROM (SELECT "+eventColumns+" FROM "+q.t.events+" WHERE position > "+p(1), 2, tf, f)
	return s + " ORDER BY position LIMIT " + p(n) + ") b" +
		" UNION ALL SELECT COALESCE(MAX(position), 0), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM " + q.t.events
}

// scanBatchRow reads one row of readBatchWithHeadSQL or of a marked stream
// page: a marker row (marker, its value in e.Position: the head, or the
// tombstone's 0) or an event, decoded. When snap is not nil, the snapshot
// row of readFromSnapshot (marked by snapshotMarker) is read into it.
func (s *Store) scanBatchRow(rows *sql.Rows, snap *event.Snapshot) (e event.Event, marker bool, err error) {
	var (
		position    sql.NullInt64
		id          uuid.NullUUID
		stream      sql.NullString
		version     sql.NullInt64
		typ         sql.NullString
		schema      sql.NullInt64
		data        sql.RawBytes
		meta        sql.RawBytes
		causation   sql.NullString
		correlation sql.NullString
		recorded    nullTimeValue
	)
	if err := rows.Scan(&position, &id, &stream, &version, &typ, &schema, &data, &meta,
		&causation, &correlation, &recorded); err != nil {
		return event.Event{}, false, err
	}
	if !id.Valid {
		if snap != nil && position.Int64 == snapshotMarker {
			*snap = event.Snapshot{
				Version:       version.Int64,
				SchemaVersion: int(schema.Int64),
				Data:          bytes.Clone(data),
				RecordedAt:    recorded.t,
			}
		}
		return event.Event{Position: position.Int64}, true, nil
	}
	e = event.Event{
		Position:      position.Int64,
		ID:            id.UUID,
		StreamID:      stream.String,
		Version:       version.Int64,
		Type:          typ.String,
		CausationID:   causation.String,
		CorrelationID: correlation.String,
		RecordedAt:    recorded.t,
	}
	if err := s.decodeInto(&e, int(schema.Int64), data, meta); err != nil {
		return event.Event{}, false, err
	}
	return e, false, nil
}

// nullTimeValue is a timeValue that also takes NULL (the zero time).
type nullTimeValue struct{ timeValue }

func (tv *nullTimeValue) Scan(src any) error {
	if src == nil {
		return nil
	}
	return tv.timeValue.Scan(src)
}

// readStreamPage reads a page of a stream with q, readForwardMarked or
// readBackwardMarked, and reports whether the stream is deleted (its
// tombstone row came with the page): one round trip where a read that finds
// no event used to need a second to tell a deleted stream from an empty
// read. With q readFromSnapshot, the stream's snapshot row is read into
// snap (left zero when there is none).
func (s *Store) readStreamPage(ctx context.Context, q string, args []any, backward bool, snap *event.Snapshot) (page []event.Event, deleted bool, err error) {
	start := s.m.startRead(ctx)
	defer func() { s.m.readDone(ctx, readOfStream, start, len(page), err) }()
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	page = make([]event.Event, 0, pageCap(args))
	for rows.Next() {
		e, marker, err := s.scanBatchRow(rows, snap)
		if err != nil {
			return page, deleted, err
		}
		if marker {
			deleted = deleted || e.Position == 0 // else the snapshot row
			continue
		}
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return page, deleted, err
	}
	// A UNION ALL keeps its branches' order in both databases, but SQL
	// does not promise it: make sure.
	order := byVersion
	if backward {
		order = func(a, b event.Event) int { return byVersion(b, a) }
	}
	if !slices.IsSortedFunc(page, order) {
		slices.SortFunc(page, order)
	}
	return page, deleted, nil
}

func byVersion(a, b event.Event) int { return cmp.Compare(a.Version, b.Version) }
