package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/tracectx"
)

// AppendTx is [Store.Append] in tx, a transaction of the store's database
// (see [Store.Transaction]): the events are written in the caller's
// transaction and commit with its other writes — a stateful reactor's
// tables and its position — or not at all. It checks the expected version
// and the event IDs as Append does, and answers the same errors; an
// append of events whose IDs are stored already at the place it would put
// them writes nothing and returns the stored events.
//
// The events get their positions at once, in the store's global order:
// on PostgreSQL, AppendTx takes the store's ordering lock (a
// transaction-level advisory lock), which every other append on the
// database then waits for until tx ends (under [OrderingXID] it takes it
// shared, and other appends do not wait; a transaction then holds at most
// [MaxXIDTransactionEvents] events in all). Call it as late as possible in
// the transaction — right before the commit, after the transaction's
// other work — and keep what follows short. On SQLite the transaction
// holds the database's write lock from its first write anyway.
//
// Subscribers are woken when tx commits: on PostgreSQL by a notification
// sent in tx, and on SQLite, when tx comes from [Store.Transaction], by
// that Store as the transaction commits (otherwise within
// Options.PollInterval).
//
// Unlike Append, AppendTx does not group concurrent appends, nor resolve
// a lost connection: the caller's transaction fails, and the caller tries
// it again (with the same event IDs, [event.WithIDs], the events are then
// stored once).
func (s *Store) AppendTx(ctx context.Context, tx *gorm.DB, streamID string, expected event.ExpectedVersion, events []any, opts ...event.AppendOption) ([]event.Event, error) {
	out, err := s.AppendAllTx(ctx, tx, []event.AppendRequest{{StreamID: streamID, Expected: expected, Events: events, Options: opts}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// AppendAllTx is [Store.AppendTx] of several appends at once, in order
// (several appends to one stream each see the versions of the ones before
// them), in a few statements whatever their number: the events a stateful
// reactor emitted for a batch. The appends succeed together or none is
// written: the first that fails (a version conflict, a deleted stream, a
// duplicate event ID) fails the call, with an error naming its stream. It
// returns the recorded events of each append, in the order of appends.
func (s *Store) AppendAllTx(ctx context.Context, tx *gorm.DB, appends []event.AppendRequest) ([][]event.Event, error) {
	start := s.m.startAppend(ctx)
	out, written, err := s.appendAllTxSpan(ctx, tx, appends)
	s.m.appendedTx(ctx, start, written, err)
	return out, err
}

// appendAllTxSpan is AppendAllTx; it also returns how many events it wrote
// (those of idempotent replays excluded).
func (s *Store) appendAllTxSpan(ctx context.Context, tx *gorm.DB, appends []event.AppendRequest) ([][]event.Event, int, error) {
	op := "append"
	stream := ""
	if len(appends) == 1 {
		stream = appends[0].StreamID
	} else {
		op = "append " + strconv.Itoa(len(appends)) + " times"
	}
	if len(appends) == 0 {
		return nil, 0, fail(op, "", "", invalid("no appends"))
	}
	ex, err := txConnOf(tx)
	if err != nil {
		return nil, 0, fail(op, stream, "", err)
	}
	tw, ok := s.d.(txWriter)
	if !ok {
		return nil, 0, fail(op, stream, "", fmt.Errorf("appends in a transaction are not supported on %T", s.d))
	}
	ctx, span := tracectx.StartChild(ctx, s.tr.t, spanAppend, s.tr.appendOpts...)
	out, written, err := s.appendAllTx(ctx, span, tw, ex, op, stream, appends)
	var last []event.Event
	if err == nil {
		last = out[len(out)-1]
	}
	endAppend(span, last, err)
	return out, written, err
}

// appendAllTx is AppendAllTx within its span.
func (s *Store) appendAllTx(ctx context.Context, span trace.Span, tw txWriter, ex txConn, op, stream string, appends []event.AppendRequest) ([][]event.Event, int, error) {
	reqs := make([]*request, len(appends))
	var err error
	for i, a := range appends {
		if reqs[i], err = s.newRequest(ctx, a.StreamID, a.Expected, a.Events, a.Options); err != nil {
			return nil, 0, fail("append", a.StreamID, "", err)
		}
	}
	traceAppendTx(span, reqs)
	out, failed, err := s.appendTx(ctx, tw, ex, reqs)
	if err != nil {
		if failed != nil {
			return nil, 0, fail("append", failed.stream, "", err)
		}
		return nil, 0, fail(op, stream, "", err)
	}
	written := 0
	for _, r := range reqs {
		if !r.replay {
			written += len(r.events)
		}
	}
	return out, written, nil
}

// appendTx writes reqs in the caller's transaction. On failure, it
// returns the request that failed, if one did.
func (s *Store) appendTx(ctx context.Context, tw txWriter, ex txConn, reqs []*request) (out [][]event.Event, failed *request, err error) {
	// Events stored under the given IDs are committed and stay where they
	// are: appends that all repeat stored events need neither the lock
	// nor the streams' state.
	var ids []uuid.UUID
	allExplicit := true
	for _, r := range reqs {
		if !r.explicitIDs {
			allExplicit = false
			continue
		}
		for i := range r.events {
			ids = append(ids, r.events[i].id)
		}
	}
	found := map[uuid.UUID]storedID{}
	if len(ids) > 0 {
		if found, err = tw.findIDsTx(ctx, ex, ids); err != nil {
			return nil, nil, err
		}
	}
	states := map[string]streamState{}
	if !allExplicit || len(found) < len(ids) {
		if err := tw.lockTx(ctx, ex); err != nil {
			return nil, nil, err
		}
		streams := make([]string, 0, len(reqs))
		for _, r := range reqs {
			if _, ok := states[r.stream]; !ok {
				states[r.stream] = streamState{}
				streams = append(streams, r.stream)
			}
		}
		if states, err = tw.statesTx(ctx, ex, streams); err != nil {
			return nil, nil, err
		}
	}
	plan := s.plan(reqs, states, found)
	for _, r := range reqs {
		switch {
		case r.deferred:
			return nil, r, invalid("an event ID is given twice in one transaction")
		case r.err != nil:
			return nil, r, r.err
		}
	}
	if len(plan.rows) > 0 {
		if err := tw.insertTx(ctx, ex, plan); err != nil {
			return nil, nil, err
		}
		if err := tw.notifyTx(ctx, ex); err != nil {
			return nil, nil, err
		}
		finishAccepted(plan)
		s.txs.appended(ex)
	}
	out = make([][]event.Event, len(reqs))
	for i, r := range reqs {
		if !r.replay {
			out[i] = r.result
			continue
		}
		if out[i], err = s.readStoredTx(ctx, ex, r); err != nil {
			return nil, r, err
		}
	}
	return out, nil, nil
}

// readStoredTx reads the stored events an idempotent append repeats,
// through the caller's transaction (which may hold the only connection).
func (s *Store) readStoredTx(ctx context.Context, ex txConn, req *request) ([]event.Event, error) {
	rows, err := ex.QueryContext(ctx, s.q.readForward, req.stream, req.replayFrom, len(req.events))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]event.Event, 0, len(req.events))
	for rows.Next() {
		e, err := s.scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != len(req.events) {
		return nil, fmt.Errorf("read stored events: found %d of %d", len(out), len(req.events))
	}
	return out, nil
}

// txConn runs statements in a caller's transaction.
type txConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// txConnOf returns what runs statements in tx, a transaction of the
// store's database.
func txConnOf(tx *gorm.DB) (txConn, error) {
	if tx == nil || tx.Statement == nil || tx.Statement.ConnPool == nil {
		return nil, invalid("nil transaction")
	}
	return tx.Statement.ConnPool, nil
}

// txWriter is what a dialect does to append in a caller's transaction.
type txWriter interface {
	// lockTx takes whatever orders commits, until the transaction ends.
	lockTx(ctx context.Context, ex txConn) error
	// statesTx reads the state of each stream.
	statesTx(ctx context.Context, ex txConn, streams []string) (map[string]streamState, error)
	// findIDsTx looks up where events with these IDs are stored.
	findIDsTx(ctx context.Context, ex txConn, ids []uuid.UUID) (map[uuid.UUID]storedID, error)
	// insertTx inserts the plan's rows and sets their positions.
	insertTx(ctx context.Context, ex txConn, plan writePlan) error
	// notifyTx wakes the subscribers of other processes at commit.
	notifyTx(ctx context.Context, ex txConn) error
}

var (
	_ txWriter = (*sqliteDialect)(nil)
	_ txWriter = (*postgresDialect)(nil)
)

// lockTx: the transaction takes the database's write lock with its first
// write (or at BEGIN IMMEDIATE); nothing else orders SQLite's commits.
func (*sqliteDialect) lockTx(context.Context, txConn) error { return nil }

// notifyTx: other processes poll; Store.Transaction wakes this one's.
func (*sqliteDialect) notifyTx(context.Context, txConn) error { return nil }

func (d *sqliteDialect) statesTx(ctx context.Context, ex txConn, streams []string) (map[string]streamState, error) {
	t := d.q.t
	states := make(map[string]streamState, len(streams))
	for start := 0; start < len(streams); start += sqliteMaxRows {
		chunk := streams[start:min(start+sqliteMaxRows, len(streams))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		var b strings.Builder
		b.WriteString("WITH s(id) AS (VALUES ")
		placeholders(&b, len(chunk), 1)
		b.WriteString(") SELECT id, (SELECT version FROM " + t.events + " WHERE stream_id = s.id ORDER BY version DESC LIMIT 1), " +
			"EXISTS (SELECT 1 FROM " + t.streams + " WHERE stream_id = s.id AND deleted = 1) FROM s")
		if err := scanStatesTx(ctx, ex, b.String(), args, states); err != nil {
			return nil, err
		}
	}
	return states, nil
}

func (d *sqliteDialect) findIDsTx(ctx context.Context, ex txConn, ids []uuid.UUID) (map[uuid.UUID]storedID, error) {
	found := map[uuid.UUID]storedID{}
	for start := 0; start < len(ids); start += sqliteMaxRows {
		chunk := ids[start:min(start+sqliteMaxRows, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id[:]
		}
		if err := scanIDs(ctx, ex, "SELECT event_id, stream_id, version FROM "+d.q.t.events+" WHERE event_id IN "+inList(len(chunk)), args, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func (d *sqliteDialect) insertTx(ctx context.Context, ex txConn, plan writePlan) error {
	now := plan.now.UnixMicro()
	for start := 0; start < len(plan.rows); start += sqliteMaxRows {
		chunk := plan.rows[start:min(start+sqliteMaxRows, len(plan.rows))]
		var b strings.Builder
		b.WriteString("INSERT INTO " + d.q.t.events + " (event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at) VALUES ")
		placeholders(&b, len(chunk), 10)
		args := make([]any, 0, len(chunk)*10)
		for _, row := range chunk {
			ev, r := row.ev, row.req
			var meta any
			if r.metaJSON != nil {
				meta = r.metaJSON
			}
			args = append(args, ev.id[:], r.stream, ev.version, ev.typ, ev.schema, ev.data, meta, r.causation, r.correlation, now)
		}
		res, err := ex.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		// One INSERT into an AUTOINCREMENT table under the write lock
		// takes consecutive positions in the order of its VALUES (see
		// sqliteDialect.write).
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for i, row := range chunk {
			row.ev.position = last - int64(len(chunk)-1-i)
		}
	}
	return nil
}

func (d *postgresDialect) lockTx(ctx context.Context, ex txConn) error {
	keys, err := d.names.get(ctx)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, d.lockSQL, keys.writeLock) // shared under OrderingXID
	return err
}

func (d *postgresDialect) notifyTx(ctx context.Context, ex txConn) error {
	keys, err := d.names.get(ctx)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, "SELECT pg_notify($1, '')", keys.channel)
	return err
}

func (d *postgresDialect) statesTx(ctx context.Context, ex txConn, streams []string) (map[string]streamState, error) {
	states := make(map[string]streamState, len(streams))
	err := scanStatesTx(ctx, ex, d.streamStates, []any{streams}, states)
	return states, err
}

func (d *postgresDialect) findIDsTx(ctx context.Context, ex txConn, ids []uuid.UUID) (map[uuid.UUID]storedID, error) {
	found := map[uuid.UUID]storedID{}
	err := scanIDs(ctx, ex, "SELECT event_id, stream_id, version FROM "+d.q.t.events+" WHERE event_id = ANY($1::uuid[])", []any{pgUUIDs(ids)}, found)
	return found, err
}

func (d *postgresDialect) insertTx(ctx context.Context, ex txConn, plan writePlan) error {
	n := len(plan.rows)
	args, byID := insertPlannedArgs(plan)
	rows, err := ex.QueryContext(ctx, d.insertPlanned, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var pos int64
		var eid uuid.UUID
		if err := rows.Scan(&pos, &eid); err != nil {
			return err
		}
		if ev := byID[eid]; ev != nil {
			ev.position = pos
			got++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("insert returned %d positions for %d events", got, n)
	}
	return nil
}

// scanStatesTx runs a query of (stream_id, version or NULL, deleted) rows
// into states.
func scanStatesTx(ctx context.Context, ex txConn, query string, args []any, states map[string]streamState) error {
	rows, err := ex.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var version sql.NullInt64
		var st streamState
		if err := rows.Scan(&id, &version, &st.deleted); err != nil {
			return err
		}
		st.version, st.exists = version.Int64, version.Valid || st.deleted
		states[id] = st
	}
	return rows.Err()
}

// scanIDs runs a query of (event_id, stream_id, version) rows into found.
func scanIDs(ctx context.Context, ex txConn, query string, args []any, found map[uuid.UUID]storedID) error {
	rows, err := ex.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var eid uuid.UUID
		var at storedID
		if err := rows.Scan(&eid, &at.stream, &at.version); err != nil {
			return err
		}
		found[eid] = at
	}
	return rows.Err()
}

// txMarks tracks the transactions that [Store.Transaction] runs, so that
// the store wakes its subscribers when one that appended commits.
type txMarks struct {
	m sync.Map // the transaction's connection (txConn) → *atomic.Bool
}

// begin registers the transaction of ex; the returned flag tells whether
// it appended, and done forgets it.
func (t *txMarks) begin(ex any) (appended *atomic.Bool, done func()) {
	appended = new(atomic.Bool)
	t.m.Store(ex, appended)
	return appended, func() { t.m.Delete(ex) }
}

// appended records that the transaction of ex appended events.
func (t *txMarks) appended(ex any) {
	if v, ok := t.m.Load(ex); ok {
		v.(*atomic.Bool).Store(true)
	}
}

// SavepointTx runs fn inside a savepoint of tx, a transaction of the
// store's database: when fn fails (or panics), what it wrote in tx is
// rolled back and tx goes on as it was before fn; when fn succeeds, its
// writes stay in tx, which the caller commits or rolls back. fn must
// write through tx. A stateful reactor handles each event of a batch in
// one, so that a failing event leaves the events before it to commit.
//
// On PostgreSQL each savepoint that writes is a subtransaction: keep the
// number of them in one transaction moderate (a few hundred), since
// PostgreSQL tracks only 64 per transaction in shared memory before other
// sessions' snapshots slow down while it runs.
func (s *Store) SavepointTx(ctx context.Context, tx *gorm.DB, fn func() error) (err error) {
	ex, err := txConnOf(tx)
	if err != nil {
		return fail("savepoint", "", "", err)
	}
	if _, err := ex.ExecContext(ctx, "SAVEPOINT cairn_step"); err != nil {
		return fail("savepoint", "", "", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		// fn failed or panicked: undo its writes and drop the savepoint.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := ex.ExecContext(rctx, "ROLLBACK TO SAVEPOINT cairn_step"); rerr != nil && err != nil {
			err = fmt.Errorf("%w (and the rollback to its savepoint failed: %w)", err, fail("rollback to savepoint", "", "", rerr))
			return
		}
		ex.ExecContext(rctx, "RELEASE SAVEPOINT cairn_step")
	}()
	if err := fn(); err != nil {
		return err
	}
	if _, err := ex.ExecContext(ctx, "RELEASE SAVEPOINT cairn_step"); err != nil {
		return fail("release savepoint", "", "", err)
	}
	done = true
	return nil
}
