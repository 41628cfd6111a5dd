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
	// insertDirect and streamStates are the statements of writeDirect
	// (streamStates also of write).
	insertDirect string
	streamStates string
}

// postgresNowMillis is PostgreSQL's clock in milliseconds since the Unix
// epoch: the time of the statement's execution, not of its transaction's
// start.
const postgresNowMillis = `CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint)`

func newPostgresDialect(db *sql.DB, t tables, opts Options) *postgresDialect {
	p := func(n int) string { return "$" + strconv.Itoa(n) }
	q := newQueries(t, p, "true", postgresNowMillis)
	notifyPositionCommits(&q, opts.TablePrefix)
	return &postgresDialect{
		db:           db,
		q:            q,
		now:          opts.Now,
		writeTimeout: opts.WriteTimeout,
		names:        pgNames{db: db, prefix: opts.TablePrefix},
		insertDirect: insertDirectSQL(t),
		streamStates: streamStatesSQL(t),
	}
}

// timeArg: PostgreSQL stores times as timestamptz.
func (*postgresDialect) timeArg(t time.Time) any { return t }
