package eventstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The single-event append on PostgreSQL: a group-commit transaction that
// carries one append of one event — every transaction of a process whose
// callers append one event at a time and rarely overlap, such as a web
// tier of many processes with few requests in flight each — is written by
// a statement of scalar parameters rather than writeDirect's unnest
// arrays, which cost the server more to plan, start and run for one row,
// and the client more to encode.
//
// The statement reads the stream's version and tombstone, inserts the
// event if the append's expected version matches and the stream is not
// deleted, and answers one row either way: the event's position and
// version, or NULL and the state that rejected it, as the insert saw it.
// So no query of the streams' states follows it, and the pipeline is
//
//	BEGIN; timeouts and the ordering lock; the insert; COMMIT
//
// plus, under OrderingXID, the notification in a transaction of its own
// (see queueCommit). The guarantees are writeDirect's: the version check
// runs in the INSERT itself, after the lock, so under lock ordering no
// other writer can move the version before the commit; under OrderingXID
// two writers of one stream insert the same (stream_id, version) and the
// unique index fails the later one, which is tried again (errRetryBatch).

// single reports whether live is one append of one event, which writeOne
// writes.
func single(live []*request) bool {
	return len(live) == 1 && len(live[0].events) == 1 && !live[0].explicitIDs
}

// insertOneSQL is the statement of writeOne. Parameters: the stream, the
// expected version's kind (as in kindCode) and exact version, the event's
// ID, type, schema version, data, metadata, causation and correlation IDs,
// then the recording time. It answers the inserted event's position and
// version (NULL when the append was rejected), then the stream's version
// (0 when it has none) and tombstone as the insert found them.
func insertOneSQL(t tables, o Ordering) string {
	col, val := "", ""
	if o == OrderingXID {
		// The transaction's first and only insert: its base position.
		col, val = "position, ", xidBaseSQL(t)+", "
	}
	return `WITH cur AS MATERIALIZED (
			SELECT COALESCE((SELECT e.version FROM ` + t.events + ` e WHERE e.stream_id = $1::text
					ORDER BY e.version DESC LIMIT 1), 0) AS v,
				EXISTS (SELECT 1 FROM ` + t.streams + ` d WHERE d.stream_id = $1::text AND d.deleted) AS gone
		), ins AS (
			INSERT INTO ` + t.events + ` (` + col + `event_id, stream_id, version, type, schema_version, data, metadata, causation_id, correlation_id, recorded_at)
			SELECT ` + val + `$4::uuid, $1::text, cur.v + 1, $5::text, $6::int, $7::bytea, $8::bytea, $9::text, $10::text, $11::timestamptz
			FROM cur
			WHERE NOT cur.gone AND CASE $2::int WHEN 1 THEN cur.v = 0 WHEN 2 THEN cur.v > 0 WHEN 3 THEN cur.v = $3::bigint ELSE true END
			RETURNING position, version
		)
		SELECT ins.position, ins.version, cur.v, cur.gone FROM cur LEFT JOIN ins ON true`
}

// writeOne writes a batch of one append of one event (see single) in one
// pipelined round trip.
func (d *postgresDialect) writeOne(ctx context.Context, r *request) error {
	keys, err := d.names.get(ctx)
	if err != nil {
		return err
	}
	now := d.now().UTC().Truncate(time.Microsecond)
	ev := &r.events[0]
	ev.position, ev.version = 0, 0 // unset: not inserted
	exact, _ := r.expected.Exact()
	return rawPgx(ctx, d.db, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		d.queueBeginLocked(b, keys.writeLock)
		b.Queue(d.insertOne, r.stream, kindCode(r.expected), exact, pgUUID(ev.id), ev.typ, int32(ev.schema),
			ev.data, r.metaJSON, r.causation, r.correlation, now)
		d.queueCommit(b, keys.channel)
		var (
			pos, version *int64
			st           streamState
		)
		if err := d.sendWrite(ctx, c, b, func(br pgx.BatchResults) error {
			return br.QueryRow().Scan(&pos, &version, &st.version, &st.deleted)
		}); err != nil {
			return err
		}
		if pos == nil || version == nil {
			st.exists = st.version > 0 || st.deleted
			rejected(r, st)
			return nil
		}
		ev.position, ev.version = *pos, *version
		finishAccepted(writePlan{rows: []*pendingRow{{req: r, ev: ev}}, now: now})
		return nil
	})
}
