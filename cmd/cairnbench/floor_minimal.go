package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// The minimal floor is the headline floor (DESIGN.md, "Performance
// targets"): the smallest event store anyone would write, with none of
// Cairn's columns or indexes beyond what the job needs. Its table is
//
//	events(id autoincrement primary key, stream_id, version, type,
//	       data, metadata, created_at default now, UNIQUE(stream_id, version))
//
// with data and metadata as TEXT on SQLite and jsonb on PostgreSQL. An
// append is one plain INSERT (one multi-row INSERT for a batch) in its own
// transaction, checking the expected version only through the unique
// constraint; a read selects the rows in order (keyset pages of 1,000 on id
// for a read of everything) and decodes data and metadata with
// encoding/json, as Cairn's reads must.

// minimalTable is the minimal floor's table.
const minimalTable = "min_events"

// minimalColumns are what a minimal floor read selects.
const minimalColumns = "id, stream_id, version, type, data, metadata, created_at"

// minimalPage is the page size of a read of everything, the same as the
// one Cairn's side reads with (see cairnSubject.readAll).
const minimalPage = 1000

// benchMetadata returns the metadata every append of every side records:
// two keys, as a web request would leave.
func benchMetadata() map[string]string {
	return map[string]string{"user": "bench-user-0042", "request": "1f0e9a52-7c1d-4f43-9a77-3c5b8e2d1a60"}
}

// minimalFloor runs the workloads on the minimal schema.
type minimalFloor struct {
	db          *sql.DB
	placeholder func(int) string
	isConflict  func(error) bool
	insertOne   string
}

var _ subject = (*minimalFloor)(nil)

func newMinimalFloor(ctx context.Context, db *database) (*minimalFloor, error) {
	f := &minimalFloor{db: db.sql}
	var ddl string
	switch db.kind {
	case kindPostgres:
		ddl = `CREATE TABLE ` + minimalTable + ` (
			id bigserial PRIMARY KEY,
			stream_id text NOT NULL,
			version integer NOT NULL,
			type text NOT NULL,
			data jsonb NOT NULL,
			metadata jsonb,
			created_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (stream_id, version)
		)`
		f.placeholder = func(n int) string { return "$" + strconv.Itoa(n) }
		f.isConflict = func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "23505"
		}
	default:
		ddl = `CREATE TABLE ` + minimalTable + ` (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			stream_id TEXT NOT NULL,
			version INTEGER NOT NULL,
			type TEXT NOT NULL,
			data TEXT NOT NULL,
			metadata TEXT,
			created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
			UNIQUE (stream_id, version)
		)`
		f.placeholder = func(int) string { return "?" }
		f.isConflict = func(err error) bool {
			var se sqlite3.Error
			return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
		}
	}
	if _, err := db.sql.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("minimal floor: create table: %w", err)
	}
	f.insertOne = f.insertSQL(1)
	return f, nil
}

// insertSQL returns a multi-row INSERT of n events.
func (f *minimalFloor) insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + minimalTable + " (stream_id, version, type, data, metadata) VALUES ")
	p := 0
	next := func() string { p++; return f.placeholder(p) }
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + next() + ", " + next() + ", " + next() + ", " + next() + ", " + next() + ")")
	}
	return b.String()
}

func (f *minimalFloor) append(ctx context.Context, stream string, expected int64, evs []payload) error {
	meta, err := json.Marshal(benchMetadata())
	if err != nil {
		return err
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f.insert(ctx, tx, stream, expected+1, evs, meta); err != nil {
		return err
	}
	return tx.Commit()
}

func (f *minimalFloor) insert(ctx context.Context, tx *sql.Tx, stream string, first int64, evs []payload, meta []byte) error {
	for len(evs) > 0 {
		n := min(len(evs), floorMaxRows)
		args := make([]any, 0, 5*n)
		for i, p := range evs[:n] {
			data, err := json.Marshal(p)
			if err != nil {
				return err
			}
			// Strings, not []byte: jsonb takes text, and so does a TEXT column.
			args = append(args, stream, first+int64(i), payloadType, string(data), string(meta))
		}
		q := f.insertOne
		if n > 1 {
			q = f.insertSQL(n)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			if f.isConflict(err) {
				return fmt.Errorf("%w: %w", errConflict, err)
			}
			return err
		}
		evs, first = evs[n:], first+int64(n)
	}
	return nil
}

func (f *minimalFloor) appendNext(ctx context.Context, stream string, p payload) error {
	meta, err := json.Marshal(benchMetadata())
	if err != nil {
		return err
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int64
	q := "SELECT COALESCE(MAX(version), 0) FROM " + minimalTable + " WHERE stream_id = " + f.placeholder(1)
	if err := tx.QueryRowContext(ctx, q, stream).Scan(&v); err != nil {
		return err
	}
	if err := f.insert(ctx, tx, stream, v+1, []payload{p}, meta); err != nil {
		return err
	}
	return tx.Commit()
}

// minimalEvent is what a minimal floor read produces for each row.
type minimalEvent struct {
	id, version int64
	stream, typ string
	createdAt   time.Time
	payload     payload
	metadata    map[string]string
}

func (f *minimalFloor) readStream(ctx context.Context, stream string, fn func(*payload)) (int, error) {
	q := "SELECT " + minimalColumns + " FROM " + minimalTable + " WHERE stream_id = " + f.placeholder(1) + " ORDER BY version"
	n, _, err := f.read(ctx, fn, q, stream)
	return n, err
}

func (f *minimalFloor) readAll(ctx context.Context, fn func(*payload)) (int, error) {
	q := "SELECT " + minimalColumns + " FROM " + minimalTable + " WHERE id > " + f.placeholder(1) +
		" ORDER BY id LIMIT " + strconv.Itoa(minimalPage)
	total := 0
	var after int64
	for {
		n, last, err := f.read(ctx, fn, q, after)
		total += n
		if err != nil || n < minimalPage {
			return total, err
		}
		after = last
	}
}

// read runs q and decodes its rows, returning how many there were and the
// id of the last.
func (f *minimalFloor) read(ctx context.Context, fn func(*payload), q string, args ...any) (n int, last int64, err error) {
	rows, err := f.db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e          minimalEvent
			data, meta sql.RawBytes
		)
		if err := rows.Scan(&e.id, &e.stream, &e.version, &e.typ, &data, &meta, &e.createdAt); err != nil {
			return n, last, err
		}
		if err := json.Unmarshal(data, &e.payload); err != nil {
			return n, last, fmt.Errorf("minimal floor: decode id %d: %w", e.id, err)
		}
		if len(meta) > 0 {
			if err := json.Unmarshal(meta, &e.metadata); err != nil {
				return n, last, fmt.Errorf("minimal floor: decode metadata of id %d: %w", e.id, err)
			}
		}
		fn(&e.payload)
		n++
		last = e.id
	}
	return n, last, rows.Err()
}

func (f *minimalFloor) versions(ctx context.Context) (map[string][]int64, error) {
	rows, err := f.db.QueryContext(ctx, "SELECT stream_id, version FROM "+minimalTable+" ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var s string
		var v int64
		if err := rows.Scan(&s, &v); err != nil {
			return nil, err
		}
		out[s] = append(out[s], v)
	}
	return out, rows.Err()
}
