package eventstore

import (
	"context"

	"github.com/google/uuid"
)

// dialect is what differs between SQLite and PostgreSQL. The
// implementations live in dialect_sqlite.go and dialect_postgres.go.
type dialect interface {
	name() string
	// placeholder returns the n-th (1-based) bind parameter.
	placeholder(n int) string
	// streamStateQuery returns a query with the stream ID as its one
	// parameter that answers one row: the stream's version (NULL when it
	// has none) and whether it is deleted.
	streamStateQuery(t tables) string
	// schema returns the DDL statements that create the store's tables.
	schema(t tables) []string
	// migrate runs the DDL statements under a lock that serializes
	// concurrent migrations, in one transaction.
	migrate(ctx context.Context, s *Store, stmts []string) error
	// write runs one group-commit transaction: it reads the state of the
	// input's streams and the events stored under its IDs, asks decide
	// what to write, writes it (setting the rows' positions) and commits.
	write(ctx context.Context, s *Store, in writeInput, decide func(map[string]streamState, map[uuid.UUID]storedID) writePlan) error
	// deleteStream marks the stream deleted and removes its events, if its
	// version satisfies check.
	deleteStream(ctx context.Context, s *Store, streamID string, check func(streamState) error) error
}

// tables holds the table names of a store.
type tables struct {
	events, streams, snapshots string
}

func newTables(prefix string) tables {
	return tables{
		events:    prefix + "events",
		streams:   prefix + "streams",
		snapshots: prefix + "snapshots",
	}
}

// eventColumns is the column list every event read selects, in the order
// scanEvent expects.
const eventColumns = "position, event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at"

// queries are the SQL texts of the reads, built once per store.
type queries struct {
	t            tables
	readEvent    string
	readForward  string
	readBackward string
	readAll      string
	streamState  string
	head         string
	saveSnapshot string
	loadSnapshot string
	// insertChecked is SQLite's single-append statement (see sqliteDialect.writeDirect).
	insertChecked string
	// insertDirect and streamStates are PostgreSQL's direct write (see
	// postgresDialect.writeDirect).
	insertDirect string
	streamStates string
}

func newQueries(d dialect, prefix string) queries {
	t := newTables(prefix)
	p := d.placeholder
	q := queries{t: t}
	q.readEvent = "SELECT " + eventColumns + " FROM " + t.events + " WHERE stream_id = " + p(1) + " AND version = " + p(2)
	q.readForward = "SELECT " + eventColumns + " FROM " + t.events + " WHERE stream_id = " + p(1) + " AND version >= " + p(2) +
		" ORDER BY version LIMIT " + p(3)
	q.readBackward = "SELECT " + eventColumns + " FROM " + t.events + " WHERE stream_id = " + p(1) + " AND version <= " + p(2) +
		" ORDER BY version DESC LIMIT " + p(3)
	q.readAll = "SELECT " + eventColumns + " FROM " + t.events + " WHERE position > " + p(1) + " ORDER BY position LIMIT " + p(2)
	q.streamState = d.streamStateQuery(t)
	switch d.(type) {
	case sqliteDialect:
		q.insertChecked = insertCheckedSQL(t)
	case postgresDialect:
		q.insertDirect = insertDirectSQL(t)
		q.streamStates = streamStatesSQL(t)
	}
	q.head = "SELECT COALESCE(MAX(position), 0) FROM " + t.events
	q.loadSnapshot = "SELECT stream_id, version, schema_version, data, recorded_at FROM " + t.snapshots + " WHERE stream_id = " + p(1)
	q.saveSnapshot = "INSERT INTO " + t.snapshots + " (stream_id, version, schema_version, data, recorded_at) VALUES (" +
		p(1) + ", " + p(2) + ", " + p(3) + ", " + p(4) + ", " + p(5) + ") ON CONFLICT (stream_id) DO UPDATE SET " +
		"version = excluded.version, schema_version = excluded.schema_version, data = excluded.data, recorded_at = excluded.recorded_at " +
		"WHERE excluded.version >= " + t.snapshots + ".version"
	return q
}

// readAllTypedSQL returns the query for ReadAll filtered to ntypes type
// names: parameters are after, the types, then the limit.
func (q *queries) readAllTypedSQL(d dialect, ntypes int) string {
	p := d.placeholder
	s := "SELECT " + eventColumns + " FROM " + q.t.events + " WHERE position > " + p(1) + " AND type IN ("
	for i := 0; i < ntypes; i++ {
		if i > 0 {
			s += ", "
		}
		s += p(i + 2)
	}
	return s + ") ORDER BY position LIMIT " + p(ntypes+2)
}

// readBatchSQL returns the query of ReadBatch with ntypes type names:
// parameters are after, head, the types, then the limit.
func (q *queries) readBatchSQL(d dialect, ntypes int) string {
	p := d.placeholder
	s := "SELECT " + eventColumns + " FROM " + q.t.events + " WHERE position > " + p(1) + " AND position <= " + p(2)
	if ntypes > 0 {
		s += " AND type IN ("
		for i := 0; i < ntypes; i++ {
			if i > 0 {
				s += ", "
			}
			s += p(i + 3)
		}
		s += ")"
	}
	return s + " ORDER BY position LIMIT " + p(ntypes+3)
}
