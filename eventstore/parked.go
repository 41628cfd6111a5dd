package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

// The parked events of event processors: events a processor set aside
// instead of handling them (see package processing, Options.Park). One row
// per processor and position, in the table "<prefix>parked_events":
//
//	processor, position   the processor and the event's global position
//	stream_id, version,
//	type                  the event's stream, version and type name
//	error, attempts       the last failure and the failed attempts
//	first_failed_at,
//	last_failed_at        Unix milliseconds, by the store's clock
//	waits_on              0, or the position of the parked event of the
//	                      stream this one was parked behind
//
// The events themselves stay in the events table: a parked row holds no
// payload, so deleting a stream leaves nothing of its data behind here.

// maxParkedError is the longest error text recorded, in bytes.
const maxParkedError = 8 << 10

// parkedRowsPerInsert bounds the rows of one INSERT: 10 parameters each,
// well under the parameter limits of both databases.
const parkedRowsPerInsert = 200

// parkedParams is the number of parkedColumns.
const parkedParams = 10

// parkedColumns is the column list every read of parked rows selects, in
// the order scanParked expects.
const parkedColumns = "processor, position, stream_id, version, type, error, attempts, first_failed_at, last_failed_at, waits_on"

// parkedSchema is the DDL of the parked events table, the same on both
// databases; parkedIndexSchema that of its index by stream.
func parkedSchema(t tables) string {
	return `CREATE TABLE IF NOT EXISTS ` + t.parked + ` (
			processor text NOT NULL,
			position bigint NOT NULL,
			stream_id text NOT NULL,
			version bigint NOT NULL DEFAULT 0,
			type text NOT NULL,
			error text NOT NULL DEFAULT '',
			attempts integer NOT NULL DEFAULT 0,
			first_failed_at bigint NOT NULL,
			last_failed_at bigint NOT NULL,
			waits_on bigint NOT NULL DEFAULT 0,
			PRIMARY KEY (processor, position)
		)`
}

func parkedIndexSchema(t tables) string {
	return `CREATE INDEX IF NOT EXISTS ` + t.parked + `_stream_idx ON ` + t.parked + ` (processor, stream_id, position)`
}

// parkedQueries are the statements on the parked events table, built once
// per store from the dialect's table names and bind parameters.
type parkedQueries struct {
	t tables
	p func(int) string

	list       string
	listStream string
	streams    string
	count      string
	counts     string
	remove     string
	removeAll  string
	removeFrom string
	failed     string
	repoint    string
}

func newParkedQueries(t tables, p func(int) string) parkedQueries {
	pk := t.parked
	return parkedQueries{
		t: t, p: p,
		list: "SELECT " + parkedColumns + " FROM " + pk + " WHERE processor = " + p(1) +
			" ORDER BY position LIMIT " + p(2),
		listStream: "SELECT " + parkedColumns + " FROM " + pk + " WHERE processor = " + p(1) + " AND stream_id = " + p(2) +
			" ORDER BY position LIMIT " + p(3),
		streams: "SELECT stream_id, MIN(position), COUNT(*), MIN(first_failed_at) FROM " + pk + " WHERE processor = " + p(1) +
			" GROUP BY stream_id ORDER BY MIN(position)",
		count:      "SELECT COUNT(*), COALESCE(MIN(first_failed_at), 0) FROM " + pk + " WHERE processor = " + p(1),
		counts:     "SELECT processor, COUNT(*) FROM " + pk + " GROUP BY processor",
		remove:     "DELETE FROM " + pk + " WHERE processor = " + p(1) + " AND position = " + p(2),
		removeAll:  "DELETE FROM " + pk + " WHERE processor = " + p(1),
		removeFrom: "DELETE FROM " + pk + " WHERE processor = " + p(1) + " AND position > " + p(2),
		failed: "UPDATE " + pk + " SET attempts = attempts + 1, error = " + p(3) + ", last_failed_at = " + p(4) + ", waits_on = 0" +
			" WHERE processor = " + p(1) + " AND position = " + p(2),
		repoint: "UPDATE " + pk + " SET waits_on = " + p(2) + " WHERE processor = " + p(1) + " AND position > " + p(2) +
			" AND stream_id = (SELECT stream_id FROM " + pk + " WHERE processor = " + p(1) + " AND position = " + p(2) + ")",
	}
}

// insertSQL returns the statement that records n parked rows (parameters
// in parkedColumns order, row after row). A row already recorded for the
// processor and position is updated: its attempts add up, and it gets the
// new error and last failure time.
func (q *parkedQueries) insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + q.t.parked + " (" + parkedColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range parkedParams {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(q.p(i*parkedParams + j + 1))
		}
		b.WriteByte(')')
	}
	b.WriteString(" ON CONFLICT (processor, position) DO UPDATE SET error = excluded.error, attempts = " +
		q.t.parked + ".attempts + excluded.attempts, last_failed_at = excluded.last_failed_at, waits_on = excluded.waits_on")
	return b.String()
}

// Park records the parked events and moves the position of the processor
// name from from to to, in one transaction, if its row still has epoch
// and the position from (as [Store.SavePosition] does). It reports whether
// it did: false means the processor was fenced, and nothing was recorded.
// The events must be those of processor name.
func (s *Store) Park(ctx context.Context, name string, epoch, from, to int64, parked []event.Parked) (saved bool, err error) {
	if err := checkParked(name, parked); err != nil {
		return false, fail("park", name, "", err)
	}
	err = s.Transaction(ctx, func(tx *gorm.DB) error { // wakes those waiting for positions
		ex, err := txExecer(tx)
		if err != nil {
			return err
		}
		if err := s.park(ctx, ex, parked); err != nil {
			return err
		}
		if saved, err = s.savePosition(ctx, ex, name, epoch, from, to); err == nil && !saved {
			return errNotSaved
		}
		return err
	})
	if errors.Is(err, errNotSaved) {
		return false, nil
	}
	if err != nil {
		return false, fail("park", name, "", err)
	}
	return true, nil
}

// errNotSaved rolls back a transaction whose position update found the
// processor fenced.
var errNotSaved = errors.New("position not saved")

// ParkTx records the parked events in tx, a transaction of the store's
// database (see [Store.Transaction]): a projector records the events of a
// batch it parks in the batch's transaction, with its position.
func (s *Store) ParkTx(ctx context.Context, tx *gorm.DB, parked []event.Parked) error {
	ex, err := txExecer(tx)
	if err == nil && len(parked) > 0 {
		err = checkParked(parked[0].Processor, parked)
	}
	if err == nil {
		err = s.park(ctx, ex, parked)
	}
	if err != nil {
		name := ""
		if len(parked) > 0 {
			name = parked[0].Processor
		}
		return fail("park", name, "", err)
	}
	return nil
}

// checkParked checks rows to record for the processor name.
func checkParked(name string, parked []event.Parked) error {
	for _, pk := range parked {
		switch {
		case pk.Processor != name:
			return invalid("parked event of processor %q, want %q", pk.Processor, name)
		case pk.Position < 1:
			return invalid("parked event at position %d", pk.Position)
		case pk.WaitsOn < 0 || pk.Attempts < 0 || pk.Version < 0:
			return invalid("parked event at position %d: negative version, waits_on or attempts", pk.Position)
		}
		if err := validStreamID(pk.StreamID); err != nil {
			return err
		}
		if err := validText("type name", pk.Type); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) park(ctx context.Context, ex execer, parked []event.Parked) error {
	q := &s.q.parked
	now := s.opts.Now()
	for len(parked) > 0 {
		n := min(len(parked), parkedRowsPerInsert)
		args := make([]any, 0, parkedParams*n)
		for _, pk := range parked[:n] {
			first, last := pk.FirstFailedAt, pk.LastFailedAt
			if last.IsZero() {
				last = now
			}
			if first.IsZero() || first.After(last) {
				first = last
			}
			args = append(args, pk.Processor, pk.Position, pk.StreamID, pk.Version, pk.Type, errorText(pk.Error), pk.Attempts,
				first.UnixMilli(), last.UnixMilli(), pk.WaitsOn)
		}
		if _, err := ex.ExecContext(ctx, q.insertSQL(n), args...); err != nil {
			return err
		}
		parked = parked[n:]
	}
	return nil
}

// errorText makes an error message storable the same way on both
// databases: valid UTF-8 without NUL (which PostgreSQL text rejects), at
// most maxParkedError bytes.
func errorText(msg string) string {
	msg = strings.ToValidUTF8(strings.ReplaceAll(msg, "\x00", `\x00`), "\uFFFD")
	if len(msg) <= maxParkedError {
		return msg
	}
	cut := maxParkedError
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}

// ParkedEvents returns the parked events of the processor, in position
// order: those of the stream streamID, or of every stream when streamID is
// "". At most limit are returned; 0 means no limit.
func (s *Store) ParkedEvents(ctx context.Context, processor, streamID string, limit int) ([]event.Parked, error) {
	if limit < 0 {
		return nil, fail("list parked events", processor, "", invalid("negative limit %d", limit))
	}
	if limit == 0 {
		limit = 1<<31 - 1
	}
	q := &s.q.parked
	var rows *sql.Rows
	var err error
	if streamID == "" {
		rows, err = s.db.QueryContext(ctx, q.list, processor, limit)
	} else {
		rows, err = s.db.QueryContext(ctx, q.listStream, processor, streamID, limit)
	}
	if err != nil {
		return nil, fail("list parked events", processor, "", err)
	}
	defer rows.Close()
	var out []event.Parked
	for rows.Next() {
		var pk event.Parked
		var first, last int64
		if err := rows.Scan(&pk.Processor, &pk.Position, &pk.StreamID, &pk.Version, &pk.Type, &pk.Error, &pk.Attempts, &first, &last, &pk.WaitsOn); err != nil {
			return nil, fail("list parked events", processor, "", err)
		}
		pk.FirstFailedAt, pk.LastFailedAt = time.UnixMilli(first), time.UnixMilli(last)
		out = append(out, pk)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list parked events", processor, "", err)
	}
	return out, nil
}

// ParkedStreams sums up the parked events of the processor per stream, in
// the order of the streams' first parked events.
func (s *Store) ParkedStreams(ctx context.Context, processor string) ([]event.ParkedStream, error) {
	rows, err := s.db.QueryContext(ctx, s.q.parked.streams, processor)
	if err != nil {
		return nil, fail("list parked streams", processor, "", err)
	}
	defer rows.Close()
	var out []event.ParkedStream
	for rows.Next() {
		var ps event.ParkedStream
		var since int64
		if err := rows.Scan(&ps.StreamID, &ps.First, &ps.Count, &since); err != nil {
			return nil, fail("list parked streams", processor, "", err)
		}
		ps.Since = time.UnixMilli(since)
		out = append(out, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list parked streams", processor, "", err)
	}
	return out, nil
}

// ParkedCount returns the number of parked events of the processor and
// the time the oldest of them first failed (zero when there are none).
func (s *Store) ParkedCount(ctx context.Context, processor string) (n int, oldest time.Time, err error) {
	var first int64
	if err := s.db.QueryRowContext(ctx, s.q.parked.count, processor).Scan(&n, &first); err != nil {
		return 0, time.Time{}, fail("count parked events", processor, "", err)
	}
	if n > 0 {
		oldest = time.UnixMilli(first)
	}
	return n, oldest, nil
}

// ParkedCounts returns the number of parked events of every processor that
// has some.
func (s *Store) ParkedCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, s.q.parked.counts)
	if err != nil {
		return nil, fail("count parked events", "", "", err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fail("count parked events", "", "", err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fail("count parked events", "", "", err)
	}
	return out, nil
}

// Unpark removes the parked events of the processor at the positions, all
// or none, in one transaction: it reports false, and removes nothing, when
// any of them is not parked (any more). A retry or skip removes what it
// retried or skipped with it.
func (s *Store) Unpark(ctx context.Context, processor string, positions ...int64) (removed bool, err error) {
	err = s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ex, err := txExecer(tx)
		if err != nil {
			return err
		}
		if removed, err = s.unpark(ctx, ex, processor, positions); err == nil && !removed {
			return errNotSaved
		}
		return err
	})
	if errors.Is(err, errNotSaved) {
		return false, nil
	}
	if err != nil {
		return false, fail("unpark", processor, "", err)
	}
	return true, nil
}

// UnparkTx is [Store.Unpark] in tx, a transaction of the store's database
// (see [Store.Transaction]): a projector removes the parked events it
// retries in the transaction that applies them. When it reports false,
// the caller must roll back: some rows may be removed.
func (s *Store) UnparkTx(ctx context.Context, tx *gorm.DB, processor string, positions ...int64) (removed bool, err error) {
	ex, err := txExecer(tx)
	if err == nil {
		removed, err = s.unpark(ctx, ex, processor, positions)
	}
	if err != nil {
		return false, fail("unpark", processor, "", err)
	}
	return removed, nil
}

func (s *Store) unpark(ctx context.Context, ex execer, processor string, positions []int64) (bool, error) {
	for _, pos := range positions {
		res, err := ex.ExecContext(ctx, s.q.parked.remove, processor, pos)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		if n != 1 {
			return false, nil
		}
	}
	return true, nil
}

// ParkedFailed records another failed attempt at the parked event of the
// processor at position, with its error, at the store's clock: its
// attempts grow by one, and it no longer waits on another event. The
// stream's later parked events are marked as waiting on it. It does
// nothing when the event is not parked.
func (s *Store) ParkedFailed(ctx context.Context, processor string, position int64, msg string) error {
	at := " position " + strconv.FormatInt(position, 10)
	err := s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ex, err := txExecer(tx)
		if err != nil {
			return err
		}
		q := &s.q.parked
		res, err := ex.ExecContext(ctx, q.failed, processor, position, errorText(msg), s.opts.Now().UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = ex.ExecContext(ctx, q.repoint, processor, position)
		return err
	})
	if err != nil {
		return fail("record parked failure", processor, at, err)
	}
	return nil
}

// removeParkedOf removes every parked event of the processor name, when
// its position is reset: the events it parked will be read again.
func (s *Store) removeParkedOf(ctx context.Context, ex execer, name string) error {
	_, err := ex.ExecContext(ctx, s.q.parked.removeAll, name)
	return err
}

// withParkedAfter runs move, which moves the position of the processor
// name to position, in a transaction that also removes the processor's
// parked events after position when move reports it moved: the processor
// will read them again.
func (s *Store) withParkedAfter(ctx context.Context, name string, position int64, move func(ex execer) (bool, error)) (moved bool, err error) {
	err = s.Transaction(ctx, func(tx *gorm.DB) error {
		ex, err := txExecer(tx)
		if err != nil {
			return err
		}
		if moved, err = move(ex); err != nil || !moved {
			return err
		}
		_, err = ex.ExecContext(ctx, s.q.parked.removeFrom, name, position)
		return err
	})
	return moved, err
}
