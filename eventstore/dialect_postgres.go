package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// OpenPostgres opens the PostgreSQL database at dsn (a postgres:// URL or
// a key=value string) through gorm with its pgx driver, with gorm's SQL
// logging silenced and a connection pool sized for a store: up to
// [PostgresMaxIdleConns] idle connections are kept, where database/sql
// keeps only two, so that concurrent appends and reads do not open and
// close a connection each time. Set the pool yourself (db.DB()) to change
// it.
func OpenPostgres(dsn string) (*gorm.DB, error) {
	if dsn == "" {
		return nil, fail("open postgres", "", "", invalid("empty DSN"))
	}
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fail("open postgres", "", "", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fail("open postgres", "", "", err)
	}
	sqlDB.SetMaxIdleConns(PostgresMaxIdleConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// PostgresMaxIdleConns is the number of idle connections [OpenPostgres]
// keeps in its pool.
const PostgresMaxIdleConns = 16

func (d *postgresDialect) schema() []string {
	t := d.q.t
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + t.events + ` (
			position bigint ` + d.positionColumn() + ` PRIMARY KEY,
			event_id uuid NOT NULL,
			stream_id text NOT NULL,
			version bigint NOT NULL,
			type text NOT NULL,
			schema_version integer NOT NULL,
			data bytea NOT NULL,
			metadata bytea,
			causation_id text NOT NULL DEFAULT '',
			correlation_id text NOT NULL DEFAULT '',
			recorded_at timestamptz NOT NULL,
			CONSTRAINT ` + t.events + `_event_id_key UNIQUE (event_id),
			CONSTRAINT ` + t.events + `_stream_version_key UNIQUE (stream_id, version)
		)`,
		`CREATE TABLE IF NOT EXISTS ` + t.streams + ` (
			stream_id text PRIMARY KEY,
			version bigint NOT NULL,
			deleted boolean NOT NULL DEFAULT false
		)`,
		`CREATE TABLE IF NOT EXISTS ` + t.snapshots + ` (
			stream_id text PRIMARY KEY,
			version bigint NOT NULL,
			schema_version integer NOT NULL,
			data bytea NOT NULL,
			recorded_at timestamptz NOT NULL
		)`,
		positionsSchema(t),
		storeSchema(t),
		parkedSchema(t),
		parkedIndexSchema(t),
		projectionVersionsTable(t),
		projectionVersionsIndex(t),
		partitionsSchema(t),
		membersSchema(t),
	}
	if d.typeIndex {
		stmts = append(stmts, typeIndexSchema(t))
	}
	return stmts
}

// typeIndexSchema is the index of Options.TypeIndex, the same on both
// databases.
func typeIndexSchema(t tables) string {
	return `CREATE INDEX IF NOT EXISTS ` + t.events + `_type_position_idx ON ` + t.events + ` (type, position)`
}

// pgKeys are the names a store uses on a PostgreSQL database, namespaced by
// schema and table prefix so that stores in other schemas never share them.
type pgKeys struct {
	writeLock   int64  // advisory lock ordering commits
	migrateLock int64  // advisory lock serializing migrations
	channel     string // LISTEN/NOTIFY channel
}

// pgNames caches the keys of a store, read once from the database.
type pgNames struct {
	db     *sql.DB
	prefix string // the store's table prefix
	t      tables
	want   Ordering // the store's: checked against the database's once

	mu       sync.Mutex
	keys     *pgKeys
	verified bool // the database's ordering is known to be want
}

func (n *pgNames) get(ctx context.Context) (pgKeys, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	keys, err := n.keysLocked(ctx)
	if err == nil && !n.verified {
		err = n.checkOrdering(ctx)
	}
	return keys, err
}

// unchecked is get without the check of the database's ordering, which
// Migrate makes itself.
func (n *pgNames) unchecked(ctx context.Context) (pgKeys, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.keysLocked(ctx)
}

func (n *pgNames) keysLocked(ctx context.Context) (pgKeys, error) {
	if n.keys != nil {
		return *n.keys, nil
	}
	var schema string
	if err := n.db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return pgKeys{}, fmt.Errorf("read current schema: %w", err)
	}
	base := schema + "." + n.prefix
	hash := func(s string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(s))
		return h.Sum64()
	}
	n.keys = &pgKeys{
		writeLock:   int64(hash("cairn.write:" + base)),
		migrateLock: int64(hash("cairn.migrate:" + base)),
		channel:     fmt.Sprintf("cairn_%016x", hash("cairn.notify:"+base)),
	}
	return *n.keys, nil
}

func (d *postgresDialect) migrate(ctx context.Context, stmts []string) error {
	keys, err := d.names.unchecked(ctx)
	if err != nil {
		return err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", keys.migrateLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	legacy, err := d.hasEventsTable(ctx, tx)
	if err != nil {
		return err
	}
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	recorded, err := d.recordOrdering(ctx, tx, legacy)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	d.names.migrated(recorded)
	return nil
}

// retryError marks a failure that a new attempt of the whole batch can
// cure.
type retryError struct{ err error }

func (e retryError) Error() string        { return e.err.Error() }
func (e retryError) Unwrap() error        { return e.err }
func (e retryError) Is(target error) bool { return target == errRetryBatch }

// pgError translates a PostgreSQL error of a write transaction: unique
// violations (another process committed the same stream version or event ID
// first), deadlocks and serialization failures are worth a new attempt.
func pgError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		// unique_violation, division_by_zero (the tombstone check),
		// deadlock_detected, serialization_failure.
		case "23505", "22012", "40P01", "40001":
			return retryError{err}
		}
	}
	return err
}

// rawPgx runs fn on the pgx connection under a pooled database/sql
// connection.
func rawPgx(ctx context.Context, db *sql.DB, fn func(*pgx.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return fmt.Errorf("the PostgreSQL driver is %T; the store needs pgx (github.com/jackc/pgx/v5/stdlib)", dc)
		}
		return fn(pc.Conn())
	})
}

// rollback ends a failed transaction; a connection that cannot roll back is
// closed so the pool discards it.
func rollback(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		c.Close(ctx)
	}
}

// write runs a group-commit transaction in two pipelined round trips.
//
// The first reads, without locks, each stream's version (its highest
// stored version, an index lookup) and tombstone, and the events stored
// under the given IDs. The plan is decided on that. The second takes the
// store's transaction-level advisory lock, checks that no stream of the
// batch was deleted meanwhile, inserts the events (positions come from the
// identity sequence, under the lock, so commits happen in position order
// across processes), notifies listeners and commits.
//
// Another process can append to a stream of the batch between the two
// round trips; the unique (stream_id, version) index then fails the insert
// and the whole batch is tried again from the reads (errRetryBatch), which
// now see the other process's events. A deletion in between fails the
// tombstone check the same way. The last attempt takes the lock before its
// reads, so it cannot race at all.
func (d *postgresDialect) write(ctx context.Context, in writeInput, decide func(map[string]streamState, map[uuid.UUID]storedID) writePlan) error {
	keys, err := d.names.get(ctx)
	if err != nil {
		return err
	}
	t := d.q.t
	lockFirst := in.attempt >= 2
	return rawPgx(ctx, d.db, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		queueBegin(b, d.writeTimeout)
		if lockFirst {
			// Exclusive in either ordering: no other writer of the store
			// can get in the way of the last attempt.
			b.Queue("SELECT pg_advisory_xact_lock($1)", keys.writeLock)
		}
		b.Queue(d.streamStates, in.streams)
		if len(in.ids) > 0 {
			b.Queue("SELECT event_id, stream_id, version FROM "+t.events+" WHERE event_id = ANY($1::uuid[])", pgUUIDs(in.ids))
		}
		states := make(map[string]streamState, len(in.streams))
		found := map[uuid.UUID]storedID{}
		err := func() error {
			br := c.SendBatch(ctx, b)
			defer br.Close()
			n := 2
			if lockFirst {
				n++
			}
			for range n {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			if err := scanStates(br, states); err != nil {
				return err
			}
			if len(in.ids) > 0 {
				rows, _ := br.Query()
				var eid uuid.UUID
				var at storedID
				if _, err := pgx.ForEachRow(rows, []any{&eid, &at.stream, &at.version}, func() error {
					found[eid] = at
					return nil
				}); err != nil {
					return err
				}
			}
			return br.Close()
		}()
		if err != nil {
			rollback(c)
			return pgError(err)
		}
		plan := decide(states, found)
		if len(plan.rows) == 0 {
			if _, err := c.Exec(ctx, "COMMIT"); err != nil {
				rollback(c)
				return pgError(err)
			}
			return nil
		}

		n := len(plan.rows)
		args, byID := insertPlannedArgs(plan)
		written := make([]string, 0, len(plan.versions))
		for name := range plan.versions {
			written = append(written, name)
		}
		b = &pgx.Batch{}
		b.Queue(d.lockSQL, keys.writeLock)
		// Fails with division_by_zero (a retry) if a stream of the batch
		// was deleted since the reads; under the lock, no deletion can
		// happen any more before the commit.
		b.Queue(`SELECT 1 / (CASE WHEN EXISTS (SELECT 1 FROM `+t.streams+
			` WHERE deleted AND stream_id = ANY($1)) THEN 0 ELSE 1 END)`, written)
		b.Queue(d.insertPlanned, args...)
		d.queueCommit(b, keys.channel)
		err = func() error {
			br := c.SendBatch(ctx, b)
			defer br.Close()
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			rows, _ := br.Query()
			var pos int64
			var eid uuid.UUID
			got := 0
			if _, err := pgx.ForEachRow(rows, []any{&pos, &eid}, func() error {
				if ev := byID[eid]; ev != nil {
					ev.position = pos
					got++
				}
				return nil
			}); err != nil {
				return err
			}
			if got != n {
				return fmt.Errorf("insert returned %d positions for %d events", got, n)
			}
			return d.readCommit(br)
		}()
		if err != nil {
			rollback(c)
			return pgError(err)
		}
		finishAccepted(plan)
		return nil
	})
}

// deleteStream runs under the advisory write lock, so no append can slip
// between its check and its deletion: appends that read the stream before
// fail their tombstone check and are tried again.
// queueBegin queues the start of a write transaction: BEGIN, then the
// transaction's timeouts and generic plans — the write statements take
// arrays, and custom planning of them costs more than their execution.
func queueBegin(b *pgx.Batch, timeout time.Duration) {
	b.Queue("BEGIN")
	b.Queue("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $1, true), "+
		"set_config('idle_in_transaction_session_timeout', $1, true), set_config('plan_cache_mode', 'force_generic_plan', true)",
		strconv.FormatInt(timeout.Milliseconds(), 10)+"ms")
}

// sendWrite sends b, a pipeline queued by queueBeginLocked, one
// statement whose results read reads, and queueCommit, on c, and reads
// its results. A failure rolls the transaction back and is translated by
// pgError.
func (d *postgresDialect) sendWrite(ctx context.Context, c *pgx.Conn, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	err := func() error {
		br := c.SendBatch(ctx, b)
		defer br.Close()
		for range 2 { // BEGIN; the timeouts and the lock
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if err := read(br); err != nil {
			return err
		}
		return d.readCommit(br)
	}()
	if err != nil {
		rollback(c)
		return pgError(err)
	}
	return nil
}

// queueBeginLocked queues the start of a write transaction that takes the
// ordering lock at once: BEGIN, then one statement that sets what
// queueBegin sets and then takes the lock (PostgreSQL evaluates a select
// list in order, so the lock waits under the transaction's lock_timeout).
func (d *postgresDialect) queueBeginLocked(b *pgx.Batch, lock int64) {
	b.Queue("BEGIN")
	b.Queue(d.beginLocked, strconv.FormatInt(d.writeTimeout.Milliseconds(), 10)+"ms", lock)
}

// beginLockedSQL is the statement of queueBeginLocked with the lock
// function fn.
func beginLockedSQL(fn string) string {
	return "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $1, true), " +
		"set_config('idle_in_transaction_session_timeout', $1, true), set_config('plan_cache_mode', 'force_generic_plan', true), " +
		fn + "($2)"
}

// scanStates reads the next result of br, a streamStates query, into
// states.
func scanStates(br pgx.BatchResults, states map[string]streamState) error {
	rows, _ := br.Query()
	var id string
	var version *int64
	var deleted bool
	_, err := pgx.ForEachRow(rows, []any{&id, &version, &deleted}, func() error {
		st := streamState{deleted: deleted, exists: version != nil || deleted}
		if version != nil {
			st.version = *version
		}
		states[id] = st
		return nil
	})
	return err
}

// execCommit reads the result of the COMMIT that ends br's batch and
// closes br. A transaction that failed earlier answers ROLLBACK, not an
// error: that is reported as one.
func execCommit(br pgx.BatchResults) error {
	tag, err := br.Exec()
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit: server answered %q", tag.String())
	}
	return br.Close()
}

func (d *postgresDialect) deleteStream(ctx context.Context, streamID string, check func(streamState) error) error {
	keys, err := d.names.get(ctx)
	if err != nil {
		return err
	}
	t := d.q.t
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", keys.writeLock); err != nil {
		return err
	}
	var st streamState
	var version sql.NullInt64
	if err := tx.QueryRowContext(ctx, d.q.streamState, streamID).Scan(&version, &st.deleted); err != nil {
		return err
	}
	st.version, st.exists = version.Int64, version.Valid || st.deleted
	if err := check(st); err != nil {
		return err
	}
	for _, q := range []string{
		"INSERT INTO " + t.streams + " (stream_id, version, deleted) VALUES ($1, $2, true) " +
			"ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, deleted = true",
		"DELETE FROM " + t.events + " WHERE stream_id = $1",
		"DELETE FROM " + t.snapshots + " WHERE stream_id = $1",
	} {
		args := []any{streamID}
		if strings.Contains(q, "$2") {
			args = append(args, st.version)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	// Wake stream subscriptions, which end when their stream is deleted.
	if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, '')", keys.channel); err != nil {
		return err
	}
	return tx.Commit()
}

// direct: batches in which no two appends share a stream and no append
// gives event IDs — what concurrent writers on their own aggregates send.
func (*postgresDialect) direct(live []*request) bool {
	seen := make(map[string]struct{}, len(live))
	for _, r := range live {
		if r.explicitIDs {
			return false
		}
		if _, dup := seen[r.stream]; dup {
			return false
		}
		seen[r.stream] = struct{}{}
	}
	return true
}

// writeDirect writes the batch in one pipelined round trip: begin, set
// the timeouts and take the ordering lock, insert every event of every
// append whose stream is at its expected version — the INSERT reads the
// versions and tombstones itself, under the lock, so no other writer can
// move them before the commit, and answers the states that rejected the
// others — notify and commit. A batch of one append of one event goes
// through writeOne instead.
func (d *postgresDialect) writeDirect(ctx context.Context, live []*request) error {
	if single(live) {
		return d.writeOne(ctx, live[0])
	}
	keys, err := d.names.get(ctx)
	if err != nil {
		return err
	}
	now := d.now().UTC().Truncate(time.Microsecond)

	nreq := len(live)
	reqIdx := make([]int32, nreq)
	reqStreams := make([]string, nreq)
	kinds := make([]int32, nreq)
	exacts := make([]int64, nreq)
	total := 0
	for i, r := range live {
		reqIdx[i], reqStreams[i], kinds[i] = int32(i), r.stream, kindCode(r.expected)
		exacts[i], _ = r.expected.Exact()
		total += len(r.events)
	}
	evReq := make([]int32, 0, total)
	offsets := make([]int64, 0, total)
	ids := make([]pgtype.UUID, 0, total)
	types := make([]string, 0, total)
	schemas := make([]int32, 0, total)
	datas := make([][]byte, 0, total)
	metas := make([][]byte, 0, total)
	causes := make([]string, 0, total)
	corrs := make([]string, 0, total)
	byID := make(map[uuid.UUID]*pendingEvent, total)
	for i, r := range live {
		for j := range r.events {
			ev := &r.events[j]
			ev.position, ev.version = 0, 0 // unset: not inserted
			evReq = append(evReq, int32(i))
			offsets = append(offsets, int64(j+1))
			ids = append(ids, pgUUID(ev.id))
			types = append(types, ev.typ)
			schemas = append(schemas, int32(ev.schema))
			datas = append(datas, ev.data)
			metas = append(metas, r.metaJSON)
			causes = append(causes, r.causation)
			corrs = append(corrs, r.correlation)
			byID[ev.id] = ev
		}
	}

	return rawPgx(ctx, d.db, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		d.queueBeginLocked(b, keys.writeLock)
		b.Queue(d.insertDirect, reqIdx, reqStreams, kinds, exacts,
			evReq, offsets, ids, types, schemas, datas, metas, causes, corrs, now)
		d.queueCommit(b, keys.channel)
		states := make(map[int32]streamState)
		if err := d.sendWrite(ctx, c, b, func(br pgx.BatchResults) error {
			rows, _ := br.Query()
			var (
				pos     *int64
				eid     pgtype.UUID
				version int64
				req     *int32
				gone    *bool
			)
			_, err := pgx.ForEachRow(rows, []any{&pos, &eid, &version, &req, &gone}, func() error {
				switch {
				case pos != nil && eid.Valid:
					if ev := byID[eid.Bytes]; ev != nil {
						ev.position, ev.version = *pos, version
					}
				case req != nil && gone != nil:
					states[*req] = streamState{version: version, deleted: *gone, exists: version > 0 || *gone}
				}
				return nil
			})
			return err
		}); err != nil {
			return err
		}
		p := writePlan{now: now}
		for i, r := range live {
			if r.events[0].position == 0 {
				st, ok := states[int32(i)]
				if !ok {
					return fmt.Errorf("insert neither stored nor rejected the append to %q", r.stream)
				}
				rejected(r, st)
				continue
			}
			for j := range r.events {
				if r.events[j].position == 0 {
					return fmt.Errorf("insert stored %d of the %d events of an append to %q", j, len(r.events), r.stream)
				}
				p.rows = append(p.rows, &pendingRow{req: r, ev: &r.events[j]})
			}
		}
		finishAccepted(p)
		return nil
	})
}

// insertDirectSQL is the statement of writeDirect. Parameters: the
// appends (index, stream, kind as in kindCode, exact version), then the
// events (append index, offset in the append, ID, type, schema version,
// data, metadata, causation, correlation), then the recording time. It
// answers a row per inserted event (position, ID, version, then NULL and
// NULL) and one per rejected append (NULL, NULL, the stream's version as
// the insert found it, 0 when it has none, then the append's index and
// whether the stream is deleted), so that no query of the streams' states
// needs to follow it.
func insertDirectSQL(t tables, o Ordering) string {
	col, val, ord, alias := positionParts(t, o, true)
	return `WITH r AS (
			SELECT * FROM unnest($1::int[], $2::text[], $3::int[], $4::bigint[]) AS r(req, stream, kind, n)
		), c AS (
			SELECT r.req, r.stream, r.kind, r.n,
				COALESCE((SELECT e.version FROM ` + t.events + ` e WHERE e.stream_id = r.stream
					ORDER BY e.version DESC LIMIT 1), 0) AS v,
				EXISTS (SELECT 1 FROM ` + t.streams + ` d WHERE d.stream_id = r.stream AND d.deleted) AS gone
			FROM r
		), cur AS MATERIALIZED (
			SELECT req, stream, v, gone,
				NOT gone AND CASE kind WHEN 1 THEN v = 0 WHEN 2 THEN v > 0 WHEN 3 THEN v = n ELSE true END AS accept
			FROM c
		), ins AS (
			INSERT INTO ` + t.events + ` (` + col + `event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at)
			SELECT ` + val + `u.event_id, cur.stream, cur.v + u.off, u.type, u.schema_version, u.data, u.metadata, u.causation_id, u.correlation_id, $14
			FROM unnest($5::int[], $6::bigint[], $7::uuid[], $8::text[], $9::int[], $10::bytea[], $11::bytea[], $12::text[], $13::text[])` + ord + `
				AS u(req, off, event_id, type, schema_version, data, metadata, causation_id, correlation_id` + alias + `)
			JOIN cur ON cur.req = u.req AND cur.accept
			RETURNING position, event_id, version
		)
		SELECT position, event_id, version, NULL::int, NULL::boolean FROM ins
		UNION ALL
		SELECT NULL, NULL, v, req, gone FROM cur WHERE NOT accept`
}

// insertPlannedArgs returns the parameters of insertPlannedSQL for plan's
// rows (a column's values as one array each, then the time), and the rows'
// events by ID, to give each the position the INSERT returns for it.
func insertPlannedArgs(plan writePlan) (args []any, byID map[uuid.UUID]*pendingEvent) {
	n := len(plan.rows)
	ids := make([]pgtype.UUID, n)
	streams := make([]string, n)
	versions := make([]int64, n)
	types := make([]string, n)
	schemas := make([]int32, n)
	datas := make([][]byte, n)
	metas := make([][]byte, n)
	causes := make([]string, n)
	corrs := make([]string, n)
	byID = make(map[uuid.UUID]*pendingEvent, n)
	for i, row := range plan.rows {
		ev := row.ev
		ids[i], streams[i], versions[i] = pgUUID(ev.id), row.req.stream, ev.version
		types[i], schemas[i], datas[i] = ev.typ, int32(ev.schema), ev.data
		metas[i], causes[i], corrs[i] = row.req.metaJSON, row.req.causation, row.req.correlation
		byID[ev.id] = ev
	}
	return []any{ids, streams, versions, types, schemas, datas, metas, causes, corrs, plan.now}, byID
}

// insertPlannedSQL is the INSERT of write. Parameters: the events' IDs,
// streams, versions, types, schema versions, data, metadata, causation
// and correlation IDs, then the recording time.
func insertPlannedSQL(t tables, o Ordering) string {
	col, val, ord, alias := positionParts(t, o, false)
	return `INSERT INTO ` + t.events + ` (` + col + `event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at)
		SELECT ` + val + `u.event_id, u.stream_id, u.version, u.type, u.schema_version, u.data, u.metadata, u.causation_id, u.correlation_id, $10
		FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::bytea[], $7::bytea[], $8::text[], $9::text[])` + ord + `
			AS u(event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id` + alias + `)
		RETURNING position, event_id`
}

// streamStatesSQL reads the version (NULL when none) and tombstone of
// each stream of the text array $1.
func streamStatesSQL(t tables) string {
	return `SELECT s.id, (SELECT e.version FROM ` + t.events + ` e WHERE e.stream_id = s.id ORDER BY e.version DESC LIMIT 1),
		EXISTS (SELECT 1 FROM ` + t.streams + ` d WHERE d.stream_id = s.id AND d.deleted)
		FROM unnest($1::text[]) AS s(id)`
}

// pgUUID returns id as a pgtype.UUID. Event IDs are bound as pgtype
// values, whose PostgreSQL type pgx knows without asking the server: in
// the query modes that do not describe statements (pgx's
// default_query_exec_mode exec and simple_protocol, common behind
// poolers) a []uuid.UUID cannot be encoded at all.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// pgUUIDs returns ids as pgtype.UUIDs (see pgUUID).
func pgUUIDs(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgUUID(id)
	}
	return out
}
