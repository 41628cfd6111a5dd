package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/event"
)

// Migrate creates the store's tables and indexes if they do not exist: the
// events, streams and snapshots, and the positions and leases of event
// processors (see [Store.LoadPosition]). It is safe to run again, and from
// several processes at once: the DDL runs in one transaction under a lock
// (an advisory lock on PostgreSQL, the write lock on SQLite).
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.d.migrate(ctx, s.d.schema()); err != nil {
		return fail("migrate", "", "", err)
	}
	return nil
}

// ReadEvent returns the event at version of the stream. It fails with
// [event.ErrEventNotFound] when there is none, and with
// [event.ErrStreamDeleted] when the stream was deleted.
func (s *Store) ReadEvent(ctx context.Context, streamID string, version int64) (event.Event, error) {
	at := " version " + strconv.FormatInt(version, 10)
	if err := validStreamID(streamID); err != nil {
		return event.Event{}, fail("read", streamID, at, err)
	}
	if version < 1 {
		return event.Event{}, fail("read", streamID, at, invalid("versions start at 1"))
	}
	var found *event.Event
	err := s.query(ctx, s.q.readEvent, []any{streamID, version}, func(e event.Event) bool {
		found = &e
		return true
	})
	if err == nil && found == nil {
		err = s.missing(ctx, streamID, event.ErrEventNotFound)
	}
	if err != nil {
		return event.Event{}, fail("read", streamID, at, err)
	}
	return *found, nil
}

// missing explains an empty read of a stream: the stream was deleted, or
// the read found nothing (notFound, which may be nil).
func (s *Store) missing(ctx context.Context, streamID string, notFound error) error {
	st, err := s.streamState(ctx, streamID)
	if err != nil {
		return err
	}
	if st.deleted {
		return event.ErrStreamDeleted
	}
	return notFound
}

// ReadStream yields the stream's events in version order, starting at
// version from (0 and 1 both mean the first), at most limit of them (0 means
// no limit). A stream with no events yields nothing; a deleted stream yields
// one error matching [event.ErrStreamDeleted]. The read fetches a page of
// events per query, so memory stays constant however long the stream.
//
// An error ends the sequence: it is yielded with a zero Event.
func (s *Store) ReadStream(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[event.Event, error] {
	return s.readStream(ctx, streamID, from, limit, false)
}

// ReadStreamBackward yields the stream's events in descending version
// order, starting at version from (0 means the last), at most limit of them
// (0 means no limit). Otherwise it behaves like [Store.ReadStream].
func (s *Store) ReadStreamBackward(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[event.Event, error] {
	return s.readStream(ctx, streamID, from, limit, true)
}

func (s *Store) readStream(ctx context.Context, streamID string, from int64, limit int, backward bool) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		fail := func(err error) {
			yield(event.Event{}, fail("read stream", streamID, "", err))
		}
		if err := validStreamID(streamID); err != nil {
			fail(err)
			return
		}
		if from < 0 || limit < 0 {
			fail(invalid("negative from (%d) or limit (%d)", from, limit))
			return
		}
		next := from
		if !backward && next < 1 {
			next = 1
		}
		if backward && next == 0 {
			next = 1<<63 - 1
		}
		q := s.q.readForwardMarked
		if backward {
			q = s.q.readBackwardMarked
		}
		sent := 0
		for {
			want, fetch := pageSize(s.opts.PageSize, limit, sent)
			page, deleted, err := s.readStreamPage(ctx, q, []any{streamID, next, fetch}, backward, nil)
			more := len(page) > want
			if more {
				page = page[:want]
			}
			for _, e := range page {
				sent++
				if backward {
					next = e.Version - 1
				} else {
					next = e.Version + 1
				}
				if !yield(e, nil) {
					return
				}
			}
			if err == nil && sent == 0 && deleted {
				err = event.ErrStreamDeleted
			}
			if err != nil {
				fail(err)
				return
			}
			if !more || (backward && next < 1) {
				return
			}
		}
	}
}

// pageSize returns how many events the next page of a read should hold
// (want) and how many to ask for (fetch): one more than want when the read
// may go on after this page, so that a read whose last page is full does
// not need one more query to find out it is done.
func pageSize(pageSize, limit, sent int) (want, fetch int) {
	if limit > 0 && limit-sent <= pageSize {
		return limit - sent, limit - sent
	}
	return pageSize, pageSize + 1
}

// readRange reads n events of a stream from version from, as one slice.
func (s *Store) readRange(ctx context.Context, streamID string, from int64, n int) ([]event.Event, error) {
	out := make([]event.Event, 0, n)
	for e, err := range s.ReadStream(ctx, streamID, from, n) {
		if err != nil {
			if oe, ok := err.(*opError); ok {
				err = oe.err // the caller names the stream
			}
			return nil, fail("read stored events", "", "", err)
		}
		out = append(out, e)
	}
	if len(out) != n {
		return nil, fail("read stored events", "", "", fmt.Errorf("found %d of %d events", len(out), n))
	}
	return out, nil
}

// ReadAll yields the events with a position after the given one, in
// position order, at most limit of them (0 means no limit). With types, it
// yields only events of those type names. Positions are not contiguous:
// resume a read with the position of the last event seen.
//
// The read fetches a page of events per query, so memory stays constant
// however large the store. An error ends the sequence: it is yielded with a
// zero Event.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int, types ...string) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		s.readAll(ctx, after, limit, types, func(e event.Event) bool { return yield(e, nil) }, func(err error) {
			yield(event.Event{}, fail("read all after "+strconv.FormatInt(after, 10), "", "", err))
		})
	}
}

// readAll pages through the events after a position, passing them to
// yield until it returns false, or the error that ends the read to fail.
func (s *Store) readAll(ctx context.Context, after int64, limit int, types []string, yield func(event.Event) bool, fail func(error)) {
	last := after
	if after < 0 || limit < 0 {
		fail(invalid("negative position (%d) or limit (%d)", after, limit))
		return
	}
	for _, t := range types {
		if err := validText("type name", t); err != nil {
			fail(err)
			return
		}
	}
	if s.hz != nil {
		// Wait until what was committed before the call is readable.
		if _, err := s.hz.head(ctx); err != nil {
			fail(err)
			return
		}
	}
	query := s.q.readAll
	tf := typesOf(types)
	if tf.filtered() {
		query = s.q.readAllTypedSQL(tf)
	}
	sent := 0
	for {
		want, fetch := pageSize(s.opts.PageSize, limit, sent)
		args := tf.appendArgs(append(make([]any, 0, len(types)+2), last))
		args = append(args, fetch)
		page, err := s.readPage(ctx, readOfAll, query, args)
		more := len(page) > want
		if more {
			page = page[:want]
		}
		for _, e := range page {
			sent++
			last = e.Position
			if !yield(e) {
				return
			}
		}
		if err != nil {
			fail(err)
			return
		}
		if !more {
			return
		}
	}
}

// query runs a read and passes each decoded event to fn until fn returns
// false. It reads and decodes a whole page before the first call to fn, so
// that no connection is held while the caller's code runs. Events before
// one that fails to decode are passed on before the error is returned.
func (s *Store) query(ctx context.Context, q string, args []any, fn func(event.Event) bool) error {
	page, err := s.readPage(ctx, readOfStream, q, args)
	for _, e := range page {
		if !fn(e) {
			return nil
		}
	}
	return err
}

// readPage runs the read query q of kind k and returns its events, those
// before a failing one with the error.
func (s *Store) readPage(ctx context.Context, k readKind, q string, args []any) ([]event.Event, error) {
	start := s.m.startRead(ctx)
	page, err := s.readRows(ctx, q, args)
	s.m.readDone(ctx, k, start, len(page), err)
	return page, err
}

func (s *Store) readRows(ctx context.Context, q string, args []any) ([]event.Event, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]event.Event, 0, pageCap(args))
	for rows.Next() {
		e, err := s.scanEvent(rows)
		if err != nil {
			return page, err
		}
		page = append(page, e)
	}
	return page, rows.Err()
}

// pageCap guesses the size of a page from a read's last argument, its
// limit, so the page is allocated once.
func pageCap(args []any) int {
	if len(args) > 0 {
		if n, ok := args[len(args)-1].(int); ok && n > 0 {
			return min(n, 4096)
		}
	}
	return 16
}

// scanEvent reads one row of eventColumns and decodes its data.
func (s *Store) scanEvent(rows *sql.Rows) (event.Event, error) {
	var (
		e        event.Event
		schema   int
		data     sql.RawBytes
		meta     sql.RawBytes
		recorded timeValue
	)
	if err := rows.Scan(&e.Position, &e.ID, &e.StreamID, &e.Version, &e.Type, &schema, &data, &meta,
		&e.CausationID, &e.CorrelationID, &recorded); err != nil {
		return event.Event{}, err
	}
	e.RecordedAt = recorded.t
	if err := s.decodeInto(&e, schema, data, meta); err != nil {
		return event.Event{}, err
	}
	return e, nil
}

// decodeInto decodes a scanned event's metadata and data into e.
func (s *Store) decodeInto(e *event.Event, schema int, data, meta []byte) error {
	if len(meta) > 0 {
		var err error
		if e.Metadata, err = decodeMetadata(meta); err != nil {
			return &event.DecodeError{Type: e.Type, SchemaVersion: schema, Position: e.Position,
				StreamID: e.StreamID, Version: e.Version, Err: fmt.Errorf("metadata: %w", err)}
		}
	}
	v, err := s.reg.Decode(e.Type, schema, data)
	if err != nil {
		var de *event.DecodeError
		if errors.As(err, &de) {
			de.Position, de.StreamID, de.Version = e.Position, e.StreamID, e.Version
			return de
		}
		return err
	}
	e.Data = v
	return nil
}

// timeValue scans a recorded_at column: a timestamptz on PostgreSQL, Unix
// microseconds on SQLite.
type timeValue struct{ t time.Time }

func (tv *timeValue) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		tv.t = v.UTC()
	case int64:
		tv.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("recorded_at: unexpected %T", src)
	}
	return nil
}

func (s *Store) streamState(ctx context.Context, streamID string) (streamState, error) {
	return streamStateOf(ctx, s.db, s.q, streamID)
}

// streamStateOf reads the state of a stream through db.
func streamStateOf(ctx context.Context, db *sql.DB, q *queries, streamID string) (streamState, error) {
	var st streamState
	var version sql.NullInt64
	if err := db.QueryRowContext(ctx, q.streamState, streamID).Scan(&version, &st.deleted); err != nil {
		return streamState{}, err
	}
	st.version, st.exists = version.Int64, version.Valid || st.deleted
	return st, nil
}

// StreamVersion returns the stream's current version: the version of its
// last event, 0 when it has none. A deleted stream is an error matching
// [event.ErrStreamDeleted].
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	if err := validStreamID(streamID); err != nil {
		return 0, fail("stream version", streamID, "", err)
	}
	st, err := s.streamState(ctx, streamID)
	if err == nil && st.deleted {
		err = event.ErrStreamDeleted
	}
	if err != nil {
		return 0, fail("stream version", streamID, "", err)
	}
	return st.version, nil
}

// Head returns the position of the last stored event, 0 when the store is
// empty. After the newest stream is deleted, the head moves back to the
// newest remaining event; positions are never reused.
//
// Under [OrderingXID] it is the newest readable position, once every
// event committed before the call is readable (see Options.HorizonWait).
func (s *Store) Head(ctx context.Context) (int64, error) {
	if s.hz != nil {
		head, err := s.hz.head(ctx)
		if err != nil {
			return 0, fail("head", "", "", err)
		}
		return head, nil
	}
	var head int64
	if err := s.db.QueryRowContext(ctx, s.q.head).Scan(&head); err != nil {
		return 0, fail("head", "", "", err)
	}
	return head, nil
}

// DeleteStream removes every event of the stream and its snapshot, if the
// stream's version satisfies expected: the right-to-be-forgotten case.
// Afterwards the stream cannot be appended to and reads of it fail, both
// with errors matching [event.ErrStreamDeleted]. Deleting a stream that does
// not exist fails with [event.ErrStreamNotFound]. Positions of the deleted
// events are never reused.
func (s *Store) DeleteStream(ctx context.Context, streamID string, expected event.ExpectedVersion) error {
	if err := validStreamID(streamID); err != nil {
		return fail("delete stream", streamID, "", err)
	}
	if !expected.Valid() {
		return fail("delete stream", streamID, "", invalid("expected version %s is negative", expected))
	}
	err := s.d.deleteStream(ctx, streamID, func(st streamState) error {
		switch {
		case st.deleted:
			return event.ErrStreamDeleted
		case !st.exists:
			return event.ErrStreamNotFound
		case !expected.Matches(st.version):
			return &event.VersionConflictError{StreamID: streamID, Expected: expected, Actual: st.version}
		}
		return nil
	})
	if err != nil {
		return fail("delete stream", streamID, "", err)
	}
	s.wake.broadcast() // stream subscriptions end at once
	return nil
}

// SaveSnapshot stores snap as the stream's snapshot, replacing an older
// one; a snapshot at a lower version than the stored one is ignored.
func (s *Store) SaveSnapshot(ctx context.Context, snap event.Snapshot) error {
	if err := validStreamID(snap.StreamID); err != nil {
		return fail("save snapshot", snap.StreamID, "", err)
	}
	if snap.Version < 1 || snap.Data == nil {
		return fail("save snapshot", snap.StreamID, "", invalid("version %d, %d bytes of data", snap.Version, len(snap.Data)))
	}
	at := snap.RecordedAt
	if at.IsZero() {
		at = s.opts.Now()
	}
	at = at.UTC().Truncate(time.Microsecond)
	if _, err := s.db.ExecContext(ctx, s.q.saveSnapshot, snap.StreamID, snap.Version, snap.SchemaVersion, snap.Data, s.d.timeArg(at)); err != nil {
		return fail("save snapshot", snap.StreamID, "", err)
	}
	return nil
}

// LoadSnapshot returns the stream's latest snapshot, and false when it has
// none.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string) (event.Snapshot, bool, error) {
	if err := validStreamID(streamID); err != nil {
		return event.Snapshot{}, false, fail("load snapshot", streamID, "", err)
	}
	var snap event.Snapshot
	var recorded timeValue
	err := s.db.QueryRowContext(ctx, s.q.loadSnapshot, streamID).
		Scan(&snap.StreamID, &snap.Version, &snap.SchemaVersion, &snap.Data, &recorded)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return event.Snapshot{}, false, nil
	case err != nil:
		return event.Snapshot{}, false, fail("load snapshot", streamID, "", err)
	}
	snap.RecordedAt = recorded.t
	return snap, true, nil
}

// snapshotMarker is the position column of the snapshot row in
// readFromSnapshot; real positions start at 1, the tombstone row's is 0.
const snapshotMarker = -1

// ReadStreamFromSnapshot reads a stream the way an aggregate is loaded: it
// returns the stream's snapshot if it has one of the given schema version
// (found is false otherwise), and events, which yields the stream's events
// after the snapshot's version, or all of them when none was found. The
// snapshot, the first page of events and the check for a deleted stream
// are one query, made before ReadStreamFromSnapshot returns: an aggregate
// with a recent snapshot loads in one round trip. Further pages are read as
// events is iterated, as [Store.ReadStream] does. A deleted stream has no
// snapshot; its events yield one error matching [event.ErrStreamDeleted].
//
// err is the first query's failure; events then yields nothing.
func (s *Store) ReadStreamFromSnapshot(ctx context.Context, streamID string, schemaVersion int) (snap event.Snapshot, found bool, events iter.Seq2[event.Event, error], err error) {
	if err := validStreamID(streamID); err != nil {
		return event.Snapshot{}, false, nil, fail("read stream from snapshot", streamID, "", err)
	}
	want, fetch := pageSize(s.opts.PageSize, 0, 0)
	page, deleted, err := s.readStreamPage(ctx, s.q.readFromSnapshot, []any{streamID, schemaVersion, fetch}, false, &snap)
	if err != nil {
		return event.Snapshot{}, false, nil, fail("read stream from snapshot", streamID, "", err)
	}
	found = snap.Version > 0
	if found {
		snap.StreamID = streamID
	}
	more := len(page) > want
	if more {
		page = page[:want]
	}
	return snap, found, func(yield func(event.Event, error) bool) {
		next := snap.Version + 1
		for _, e := range page {
			next = e.Version + 1
			if !yield(e, nil) {
				return
			}
		}
		switch {
		case deleted && len(page) == 0:
			yield(event.Event{}, fail("read stream", streamID, "", event.ErrStreamDeleted))
		case more:
			for e, err := range s.ReadStream(ctx, streamID, next, 0) {
				if !yield(e, err) || err != nil {
					return
				}
			}
		}
	}, nil
}
