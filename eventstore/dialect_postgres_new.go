package eventstore

import (
	"database/sql"
	"strconv"
	"time"
)

// postgresDialect is a store's PostgreSQL dialect.
type postgresDialect struct {
	db           *sql.DB
	q            queries
	now          func() time.Time // the store's clock
	writeTimeout time.Duration
	names        pgNames
	// insertDirect is the statement of writeDirect, insertOne of
	// writeOne, streamStates write's query of the streams' states.
	insertDirect string
	insertOne    string
	streamStates string
	typeIndex    bool // Options.TypeIndex
	// ordering is the store's; lockSQL (the lock a write takes right
	// before its insert) and insertPlanned (write's insert) depend on it
	// (see dialect_postgres_xid.go).
	ordering      Ordering
	lockSQL       string
	insertPlanned string
	// beginLocked sets a write transaction's timeouts and takes the
	// ordering lock (see queueBeginLocked).
	beginLocked string
}

// postgresNowMillis is PostgreSQL's clock in milliseconds since the Unix
// epoch: the time of the statement's execution, not of its transaction's
// start.
const postgresNowMillis = `CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint)`

func newPostgresDialect(db *sql.DB, t tables, opts Options) *postgresDialect {
	p := func(n int) string { return "$" + strconv.Itoa(n) }
	q := newQueries(t, p, "true", postgresNowMillis)
	q.pv.lock = "LOCK TABLE " + t.projectionVersions + " IN SHARE ROW EXCLUSIVE MODE"
	q.pv.isTable = "SELECT count(*) FROM pg_class WHERE oid = to_regclass($1) AND relkind IN ('r', 'p')"
	q.pv.setPosition += " RETURNING pg_notify(" + positionsChannelSQL(opts.TablePrefix) + ", '')"
	notifyPositionCommits(&q, opts.TablePrefix)
	d := &postgresDialect{
		db:            db,
		q:             q,
		now:           opts.Now,
		writeTimeout:  opts.WriteTimeout,
		names:         pgNames{db: db, prefix: opts.TablePrefix, t: t, want: opts.Ordering},
		insertDirect:  insertDirectSQL(t, opts.Ordering),
		insertOne:     insertOneSQL(t, opts.Ordering),
		streamStates:  streamStatesSQL(t),
		ordering:      opts.Ordering,
		typeIndex:     opts.TypeIndex,
		lockSQL:       "SELECT pg_advisory_xact_lock($1)",
		beginLocked:   beginLockedSQL("pg_advisory_xact_lock"),
		insertPlanned: insertPlannedSQL(t, opts.Ordering),
	}
	if opts.Ordering == OrderingXID {
		d.setXID()
	}
	return d
}

// timeArg: PostgreSQL stores times as timestamptz.
func (*postgresDialect) timeArg(t time.Time) any { return t }
