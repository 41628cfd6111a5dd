package eventstore

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// dialect is what differs between SQLite and PostgreSQL. A dialect is a
// value built once by [New] for one store: it holds the database, the
// table names, its query texts and whatever else its statements need, so
// that the code shared by both databases never asks which one it is on.
// The implementations live in dialect_sqlite.go and dialect_postgres.go.
type dialect interface {
	// schema returns the DDL statements that create the store's tables.
	schema() []string
	// migrate runs the DDL statements under a lock that serializes
	// concurrent migrations, in one transaction.
	migrate(ctx context.Context, stmts []string) error
	// write runs one group-commit transaction: it reads the state of the
	// input's streams and the events stored under its IDs, asks decide
	// what to write, writes it (setting the rows' positions) and commits.
	write(ctx context.Context, in writeInput, decide func(map[string]streamState, map[uuid.UUID]storedID) writePlan) error
	// deleteStream marks the stream deleted and removes its events, if its
	// version satisfies check.
	deleteStream(ctx context.Context, streamID string, check func(streamState) error) error
	// timeArg returns the value a recorded_at column is bound to for t.
	timeArg(t time.Time) any
}

// tables holds the table names of a store.
type tables struct {
	events, streams, snapshots string
	// positions holds the positions and leases of event processors.
	positions string
	// store holds what the store records about itself: its ordering
	// (PostgreSQL only; see dialect_postgres_xid.go).
	store string
	// parked holds the events processors parked (see parked.go).
	parked string
	// projectionVersions holds the versions of versioned projections
	// (see projection_versions.go).
	projectionVersions string
	// partitions and members hold the layouts of partitioned processors
	// and the runners that share them (see partitions.go).
	partitions, members string
}

func newTables(prefix string) tables {
	return tables{
		events:             prefix + "events",
		streams:            prefix + "streams",
		snapshots:          prefix + "snapshots",
		positions:          prefix + "processor_positions",
		store:              prefix + "store",
		parked:             prefix + "parked_events",
		projectionVersions: prefix + "projection_versions",
		partitions:         prefix + "processor_partitions",
		members:            prefix + "processor_members",
	}
}

// eventColumns is the column list every event read selects, in the order
// scanEvent expects.
const eventColumns = "position, event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at"

// queries are the SQL texts both dialects share, built once per store from
// the dialect's table names, bind parameters and clock.
type queries struct {
	t tables
	// p returns the n-th (1-based) bind parameter.
	p func(n int) string

	readEvent    string
	readForward  string
	readBackward string
	// readForwardMarked and readBackwardMarked are the same pages with one
	// more row, when the stream is deleted: a tombstone row whose event
	// columns are NULL (see readStreamPage).
	readForwardMarked  string
	readBackwardMarked string
	// readFromSnapshot is the first page of ReadStreamFromSnapshot: the
	// stream's snapshot of a schema version as one more row, marked by
	// snapshotMarker, the page of events after it, and the tombstone row.
	readFromSnapshot string
	readAll          string
	// below, when set, is a condition that every read of the global order
	// adds ("AND position < …"): the horizon of OrderingXID.
	below string
	// streamState has the stream ID as its one parameter and answers one
	// row: the stream's version (NULL when it has none) and whether it is
	// deleted.
	streamState  string
	head         string
	saveSnapshot string
	loadSnapshot string

	// The processor positions and leases (see positions.go).
	createPosition string
	loadPosition   string
	savePosition   string
	resetPosition  string
	acquireLease   string
	renewLease     string
	releaseLease   string
	leaseHolder    string
	listPositions  string
	setFailure     string
	setPaused      string
	// processorProgress reads what a wait for a position needs of one
	// processor's row (see positions_watch.go).
	processorProgress string

	// The parked events of processors (see parked.go).
	parked parkedQueries

	// Processor start positions and pause flags (positions_start.go).
	start startQueries

	// The projection versions (see projection_versions.go).
	pv projectionQueries

	// The partitions of processors and their members (partitions.go).
	part partitionQueries
}

// newQueries builds the shared query texts. p is the dialect's bind
// parameter; deleted is the SQL truth value of a deleted stream's flag;
// nowMillis is an SQL expression for the database's clock, in milliseconds
// since the Unix epoch: leases are timed by it, never by the clocks of the
// processes that share them.
func newQueries(t tables, p func(int) string, deleted, nowMillis string) queries {
	q := queries{t: t, p: p}
	q.readEvent = "SELECT " + eventColumns + " FROM " + t.events + " WHERE stream_id = " + p(1) + " AND version = " + p(2)
	q.readForward = "SELECT " + eventColumns + " FROM " + t.events + " WHERE stream_id = " + p(1) + " AND version >= " + p(2) +
		" ORDER BY version LIMIT " + p(3)
	q.readBackward = "SELECT " + eventColumns + " FROM " + t.events + " WHERE stream_id = " + p(1) + " AND version <= " + p(2) +
		" ORDER BY version DESC LIMIT " + p(3)
	tombstone := " UNION ALL SELECT 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM " + t.streams +
		" WHERE stream_id = " + p(1) + " AND deleted = " + deleted
	q.readForwardMarked = "SELECT " + eventColumns + " FROM (" + q.readForward + ") p" + tombstone
	q.readBackwardMarked = "SELECT " + eventColumns + " FROM (" + q.readBackward + ") p" + tombstone
	q.readFromSnapshot = "SELECT " + eventColumns + " FROM (SELECT " + eventColumns + " FROM " + t.events +
		" WHERE stream_id = " + p(1) + " AND version > COALESCE((SELECT version FROM " + t.snapshots +
		" WHERE stream_id = " + p(1) + " AND schema_version = " + p(2) + "), 0) ORDER BY version LIMIT " + p(3) + ") p" + tombstone +
		" UNION ALL SELECT " + strconv.Itoa(snapshotMarker) + ", NULL, NULL, version, NULL, schema_version, data, NULL, NULL, NULL, recorded_at FROM " + t.snapshots +
		" WHERE stream_id = " + p(1) + " AND schema_version = " + p(2)
	q.setBelow("")
	q.streamState = "SELECT (SELECT version FROM " + t.events + " WHERE stream_id = " + p(1) + " ORDER BY version DESC LIMIT 1), " +
		"EXISTS (SELECT 1 FROM " + t.streams + " WHERE stream_id = " + p(1) + " AND deleted = " + deleted + ")"
	q.head = "SELECT COALESCE(MAX(position), 0) FROM " + t.events
	q.loadSnapshot = "SELECT stream_id, version, schema_version, data, recorded_at FROM " + t.snapshots + " WHERE stream_id = " + p(1)
	q.saveSnapshot = "INSERT INTO " + t.snapshots + " (stream_id, version, schema_version, data, recorded_at) VALUES (" +
		p(1) + ", " + p(2) + ", " + p(3) + ", " + p(4) + ", " + p(5) + ") ON CONFLICT (stream_id) DO UPDATE SET " +
		"version = excluded.version, schema_version = excluded.schema_version, data = excluded.data, recorded_at = excluded.recorded_at " +
		"WHERE excluded.version >= " + t.snapshots + ".version"

	pt := t.positions
	q.createPosition = "INSERT INTO " + pt + " (name, position, epoch) VALUES (" + p(1) + ", 0, 0) ON CONFLICT (name) DO NOTHING"
	q.loadPosition = "SELECT position, epoch FROM " + pt + " WHERE name = " + p(1)
	q.savePosition = "UPDATE " + pt + " SET position = " + p(1) + " WHERE name = " + p(2) + " AND epoch = " + p(3) + " AND position = " + p(4)
	q.resetPosition = "UPDATE " + pt + " SET position = 0, epoch = epoch + 1 WHERE name = " + p(1)
	q.acquireLease = "UPDATE " + pt + " SET owner = " + p(1) + ", epoch = epoch + 1, lease_until = " + nowMillis + " + " + p(2) +
		" WHERE name = " + p(3) + " AND (owner = '' OR owner = " + p(4) + " OR lease_until <= " + nowMillis + ")" +
		" RETURNING epoch, position"
	q.renewLease = "UPDATE " + pt + " SET lease_until = " + nowMillis + " + " + p(1) +
		" WHERE name = " + p(2) + " AND owner = " + p(3) + " AND epoch = " + p(4)
	q.releaseLease = "UPDATE " + pt + " SET owner = '', lease_until = 0 WHERE name = " + p(1) + " AND owner = " + p(2) + " AND epoch = " + p(3)
	q.leaseHolder = "SELECT CASE WHEN lease_until > " + nowMillis + " THEN owner ELSE '' END, position FROM " + pt + " WHERE name = " + p(1)
	q.listPositions = "SELECT name, position, epoch, CASE WHEN lease_until > " + nowMillis + " THEN owner ELSE '' END, " +
		"CASE WHEN lease_until > " + nowMillis + " THEN lease_until ELSE 0 END, paused, last_error, failed_at FROM " + pt + " ORDER BY name"
	q.setFailure = "UPDATE " + pt + " SET last_error = " + p(2) + ", failed_at = CASE WHEN " + p(2) + " = '' THEN 0 ELSE " + nowMillis + " END WHERE name = " + p(1)
	q.setPaused = "UPDATE " + pt + " SET paused = " + p(2) + " WHERE name = " + p(1)
	q.processorProgress = "SELECT p.position, p.paused, p.last_error, COALESCE(k.error, ''), COALESCE(k.waits_on, 0), k.position IS NOT NULL FROM " + pt +
		" p LEFT JOIN " + t.parked + " k ON k.processor = p.name AND k.position = " + p(2) + " WHERE p.name = " + p(1)
	q.parked = newParkedQueries(t, p)
	q.start = newStartQueries(t, p)
	q.pv = newProjectionQueries(t, p, nowMillis)
	q.part = newPartitionQueries(t, p, nowMillis)
	return q
}

// positionsSchema is the DDL of the processor positions table, the same on
// both databases: one row per processor name, with the position of the
// last event it has fully handled, the epoch every position update checks,
// the lease (owner and expiry, in milliseconds of the database's clock),
// whether an operator paused it (0 or 1), and the error it last stopped
// with (” when none) with when, in milliseconds of the database's clock.
func positionsSchema(t tables) string {
	return `CREATE TABLE IF NOT EXISTS ` + t.positions + ` (
			name text PRIMARY KEY,
			position bigint NOT NULL DEFAULT 0,
			epoch bigint NOT NULL DEFAULT 0,
			owner text NOT NULL DEFAULT '',
			lease_until bigint NOT NULL DEFAULT 0,
			paused integer NOT NULL DEFAULT 0,
			last_error text NOT NULL DEFAULT '',
			failed_at bigint NOT NULL DEFAULT 0
		)`
}

// setBelow sets the condition every read of the global order adds, and
// the queries that have it built in.
func (q *queries) setBelow(below string) {
	q.below = below
	q.readAll = "SELECT " + eventColumns + " FROM " + q.t.events + " WHERE position > " + q.p(1) + below + " ORDER BY position LIMIT " + q.p(2)
}

// readAllTypedSQL returns the query for ReadAll filtered to the types tf:
// parameters are after, the types' (tf.appendArgs), then the limit.
func (q *queries) readAllTypedSQL(tf typeFilter) string {
	cond, n := tf.condition(q.p, 2)
	return "SELECT " + eventColumns + " FROM " + q.t.events + " WHERE position > " + q.p(1) + q.below + cond +
		" ORDER BY position LIMIT " + q.p(n)
}
