package eventstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"
)

// sqliteDialect is a store's SQLite dialect.
type sqliteDialect struct {
	db  *sql.DB
	q   queries
	now func() time.Time // the store's clock
	// insertChecked is the statement of writeDirect on a database without
	// the append trigger; insertGuarded its statement where the trigger
	// makes the checks (see appendTriggerSchema).
	insertChecked string
	insertGuarded string
	// guarded caches whether the database has the append trigger: 0
	// unknown (read at the next direct write), 1 yes, 2 no. Migrate
	// resets it.
	guarded   atomic.Int32
	typeIndex bool // Options.TypeIndex
}

// sqliteNowMillis is SQLite's clock in milliseconds since the Unix epoch.
const sqliteNowMillis = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`

func newSQLiteDialect(db *sql.DB, t tables, opts Options) *sqliteDialect {
	// Numbered parameters (?NNN), so that a query can use one twice.
	p := func(n int) string { return "?" + strconv.Itoa(n) }
	q := newQueries(t, p, "1", sqliteNowMillis)
	q.pv.isTable = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1"
	return &sqliteDialect{
		db:            db,
		q:             q,
		now:           opts.Now,
		insertChecked: insertCheckedSQL(t),
		insertGuarded: insertGuardedSQL(t),
		typeIndex:     opts.TypeIndex,
	}
}

// timeArg: SQLite stores times as Unix microseconds.
func (*sqliteDialect) timeArg(t time.Time) any { return t.UnixMicro() }

func (d *sqliteDialect) schema() []string {
	t := d.q.t
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + t.events + ` (
			position INTEGER PRIMARY KEY AUTOINCREMENT,
			event_id BLOB NOT NULL UNIQUE,
			stream_id TEXT NOT NULL,
			version INTEGER NOT NULL,
			type TEXT NOT NULL,
			schema_version INTEGER NOT NULL,
			data BLOB NOT NULL,
			metadata BLOB,
			causation_id TEXT NOT NULL DEFAULT '',
			correlation_id TEXT NOT NULL DEFAULT '',
			recorded_at INTEGER NOT NULL,
			UNIQUE (stream_id, version)
		)`,
		`CREATE TABLE IF NOT EXISTS ` + t.streams + ` (
			stream_id TEXT PRIMARY KEY,
			version INTEGER NOT NULL,
			deleted INTEGER NOT NULL DEFAULT 0
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + t.snapshots + ` (
			stream_id TEXT PRIMARY KEY,
			version INTEGER NOT NULL,
			schema_version INTEGER NOT NULL,
			data BLOB NOT NULL,
			recorded_at INTEGER NOT NULL
		)`,
		positionsSchema(t),
		parkedSchema(t),
		parkedIndexSchema(t),
		projectionVersionsTable(t),
		projectionVersionsIndex(t),
		appendTriggerSchema(t),
		partitionsSchema(t),
		membersSchema(t),
	}
	if d.typeIndex {
		stmts = append(stmts, typeIndexSchema(t))
	}
	return stmts
}

// sqliteContext: the SQLite driver watches a cancellable context with a
// goroutine per statement, which costs as much as a small statement. Write
// transactions run on context.WithoutCancel: their waits are bounded by
// busy_timeout, and a write must not be abandoned half-way anyway.

// sqliteTx is a write transaction on one pinned connection, begun with
// BEGIN IMMEDIATE whatever the DSN says: a deferred transaction that
// upgrades to a write gets SQLITE_BUSY without waiting for busy_timeout.
type sqliteTx struct {
	conn *sql.Conn
	done bool
}

func beginSQLite(ctx context.Context, db *sql.DB) (*sqliteTx, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		return nil, err
	}
	return &sqliteTx{conn: conn}, nil
}

func (tx *sqliteTx) commit(ctx context.Context) error {
	if _, err := tx.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	tx.done = true
	return tx.conn.Close()
}

// rollback ends the transaction unless it was committed; safe to defer.
func (tx *sqliteTx) rollback() {
	if tx.done {
		return
	}
	tx.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := tx.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		// The connection's state is unknown: make the pool drop it.
		tx.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	tx.conn.Close()
}

// migrate needs no lock of its own: the transaction begins IMMEDIATE, so
// it holds the database's write lock from its first statement.
func (d *sqliteDialect) migrate(ctx context.Context, stmts []string) error {
	// WAL is a property of the database file; it cannot be switched
	// inside a transaction. In-memory databases keep their own mode.
	if _, err := d.db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	tx, err := beginSQLite(ctx, d.db)
	if err != nil {
		return err
	}
	defer tx.rollback()
	for _, stmt := range stmts {
		if _, err := tx.conn.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	defer d.guarded.Store(0) // the schema may have changed: read it again
	return tx.commit(ctx)
}

// sqliteMaxRows bounds the rows of one multi-row statement, far below
// SQLite's limit of 32,766 bind parameters.
const sqliteMaxRows = 500

func placeholders(b *strings.Builder, rows, cols int) {
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
}

func inList(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

func (d *sqliteDialect) write(ctx context.Context, in writeInput, decide func(map[string]streamState, map[uuid.UUID]storedID) writePlan) error {
	ctx = context.WithoutCancel(ctx) // see sqliteContext
	t := d.q.t
	tx, err := beginSQLite(ctx, d.db)
	if err != nil {
		return err
	}
	defer tx.rollback()

	// A stream's version is its highest stored version (an index seek on
	// (stream_id, version)); the streams table holds only the tombstones
	// of deleted streams. Appends then write nothing but their events.
	states := make(map[string]streamState, len(in.streams))
	for start := 0; start < len(in.streams); start += sqliteMaxRows {
		chunk := in.streams[start:min(start+sqliteMaxRows, len(in.streams))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		var b strings.Builder
		b.WriteString("WITH s(id) AS (VALUES ")
		placeholders(&b, len(chunk), 1)
		b.WriteString(") SELECT id, (SELECT version FROM " + t.events + " WHERE stream_id = s.id ORDER BY version DESC LIMIT 1), " +
			"EXISTS (SELECT 1 FROM " + t.streams + " WHERE stream_id = s.id AND deleted = 1) FROM s")
		rows, err := tx.conn.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var version sql.NullInt64
			var st streamState
			if err := rows.Scan(&id, &version, &st.deleted); err != nil {
				rows.Close()
				return err
			}
			st.version, st.exists = version.Int64, version.Valid || st.deleted
			states[id] = st
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	found := map[uuid.UUID]storedID{}
	for start := 0; start < len(in.ids); start += sqliteMaxRows {
		chunk := in.ids[start:min(start+sqliteMaxRows, len(in.ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id[:]
		}
		rows, err := tx.conn.QueryContext(ctx, "SELECT event_id, stream_id, version FROM "+t.events+
			" WHERE event_id IN "+inList(len(chunk)), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var eid uuid.UUID
			var at storedID
			if err := rows.Scan(&eid, &at.stream, &at.version); err != nil {
				rows.Close()
				return err
			}
			found[eid] = at
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}

	plan := decide(states, found)
	if len(plan.rows) == 0 {
		return tx.commit(ctx)
	}
	// Under the write lock, one INSERT of n rows into an AUTOINCREMENT
	// table takes the n positions after the largest ever used, in the
	// order of its VALUES: the last insert ID gives them all, with no
	// RETURNING rows to scan.
	now := plan.now.UnixMicro()
	for start := 0; start < len(plan.rows); start += sqliteMaxRows {
		chunk := plan.rows[start:min(start+sqliteMaxRows, len(plan.rows))]
		var b strings.Builder
		b.WriteString("INSERT INTO " + t.events + " (event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at) VALUES ")
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
		res, err := tx.conn.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if n != int64(len(chunk)) {
			return fmt.Errorf("insert stored %d of %d events", n, len(chunk))
		}
		for i, row := range chunk {
			row.ev.position = last - int64(len(chunk)-1-i)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return err
	}
	finishAccepted(plan)
	return nil
}

func (d *sqliteDialect) deleteStream(ctx context.Context, streamID string, check func(streamState) error) error {
	t := d.q.t
	tx, err := beginSQLite(ctx, d.db)
	if err != nil {
		return err
	}
	defer tx.rollback()
	var st streamState
	var version sql.NullInt64
	err = tx.conn.QueryRowContext(ctx, d.q.streamState, streamID).Scan(&version, &st.deleted)
	if err != nil {
		return err
	}
	st.version, st.exists = version.Int64, version.Valid || st.deleted
	if err := check(st); err != nil {
		return err
	}
	for _, q := range []string{
		"INSERT INTO " + t.streams + " (stream_id, version, deleted) VALUES (?1, " + strconv.FormatInt(st.version, 10) + ", 1)",
		"DELETE FROM " + t.events + " WHERE stream_id = ?",
		"DELETE FROM " + t.snapshots + " WHERE stream_id = ?",
	} {
		if _, err := tx.conn.ExecContext(ctx, q, streamID); err != nil {
			return err
		}
	}
	return tx.commit(ctx)
}

// direct: a lone append of one event with an exact expected version (or
// no stream) and a generated ID — the commonest append of all.
func (*sqliteDialect) direct(live []*request) bool {
	if len(live) != 1 {
		return false
	}
	r := live[0]
	_, exact := r.expected.Exact()
	return len(r.events) == 1 && !r.explicitIDs && (exact || r.expected.IsNoStream())
}

// writeDirect appends the one event in one autocommit statement: the
// insert carries the version check, and SQLite runs a lone write statement
// as its own transaction, taking the write lock at its start (waiting up to
// busy_timeout). That is cheaper than the BEGIN, INSERT, COMMIT of a plain
// insert. Only when the check fails does it read the stream's state, to
// explain why.
func (d *sqliteDialect) writeDirect(ctx context.Context, live []*request) error {
	ctx = context.WithoutCancel(ctx) // see sqliteContext
	r := live[0]
	current, _ := r.expected.Exact() // 0 for NoStream
	ev := &r.events[0]
	ev.version = current + 1
	now := d.now().UTC().Truncate(time.Microsecond)
	var meta any
	if r.metaJSON != nil {
		meta = r.metaJSON
	}
	args := []any{ev.id[:], r.stream, ev.version, ev.typ, ev.schema, ev.data, meta, r.causation, r.correlation, now.UnixMicro(), current}
	guarded, err := d.isGuarded(ctx)
	if err != nil {
		return err
	}
	query := d.insertChecked
	if guarded {
		query, args = d.insertGuarded, args[:10]
	}
	res, err := d.db.ExecContext(ctx, query, args...)
	if err != nil {
		if !guarded || !isConstraintError(err) {
			return err
		}
		// The trigger or the (stream_id, version) key refused the event:
		// say why, from the stream's state.
		st, serr := streamStateOf(ctx, d.db, &d.q, r.stream)
		if serr != nil {
			return serr
		}
		if !st.deleted && st.version == current {
			return err // not the stream's version: report the refusal as it is
		}
		rejected(r, st)
		return nil
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		st, err := streamStateOf(ctx, d.db, &d.q, r.stream)
		if err != nil {
			return err
		}
		rejected(r, st)
		return nil
	}
	if ev.position, err = res.LastInsertId(); err != nil {
		return err
	}
	finishAccepted(writePlan{rows: []*pendingRow{{req: r, ev: ev}}, now: now})
	return nil
}

// isGuarded reports whether the database has the append trigger, reading
// the schema once after each Migrate (a database migrated by an older
// Cairn has none until it is migrated again).
func (d *sqliteDialect) isGuarded(ctx context.Context) (bool, error) {
	switch d.guarded.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var n int
	err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1 AND tbl_name = ?2",
		d.q.t.events+"_append_check", d.q.t.events).Scan(&n)
	if err != nil {
		return false, err
	}
	if n > 0 {
		d.guarded.Store(1)
		return true, nil
	}
	d.guarded.Store(2)
	return false, nil
}

// isConstraintError reports a SQLite constraint failure: a unique key or
// the append trigger.
func isConstraintError(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// appendTriggerSchema is the SQLite trigger that checks every event
// inserted: its stream is not deleted, and the version before it is
// stored (the (stream_id, version) key refuses a version stored already).
// With it a single append is a plain INSERT: checking in the INSERT's own
// SELECT makes SQLite materialize the SELECT, which cost a third of the
// append's CPU (38 against 27 µs in a benchmark of the statements alone).
// Batch writes check the streams first anyway; for them the trigger is a
// second guard, at ~0.5 µs an event.
func appendTriggerSchema(t tables) string {
	return `CREATE TRIGGER IF NOT EXISTS ` + t.events + `_append_check BEFORE INSERT ON ` + t.events +
		` WHEN (NEW.version > 1 AND NOT EXISTS (SELECT 1 FROM ` + t.events + ` WHERE stream_id = NEW.stream_id AND version = NEW.version - 1))` +
		` OR EXISTS (SELECT 1 FROM ` + t.streams + ` WHERE stream_id = NEW.stream_id AND deleted = 1)` +
		` BEGIN SELECT RAISE(ABORT, 'cairn: event out of its stream''s sequence, or its stream is deleted'); END`
}

// insertGuardedSQL is the statement of writeDirect on a database with the
// append trigger: parameters 1-10 are the event's columns.
func insertGuardedSQL(t tables) string {
	return "INSERT INTO " + t.events +
		" (event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at)" +
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
}

// insertCheckedSQL is the statement of writeDirect: parameters 1-10 are
// the event's columns, 11 the stream's expected current version.
func insertCheckedSQL(t tables) string {
	return "INSERT INTO " + t.events +
		" (event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at)" +
		" SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10" +
		" WHERE COALESCE((SELECT version FROM " + t.events + " WHERE stream_id = ?2 ORDER BY version DESC LIMIT 1), 0) = ?11" +
		" AND NOT EXISTS (SELECT 1 FROM " + t.streams + " WHERE stream_id = ?2 AND deleted = 1)"
}
