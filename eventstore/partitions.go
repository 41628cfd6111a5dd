package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

// Partitioned processors. A processor split into partitions keeps one
// position row per partition in the positions table, each with its own
// position, lease and epoch; the names of those rows are the processing
// package's business. This file keeps two more tables:
//
//   - the partitions table: for a processor's name, its number of
//     partitions (its layout; no row means never partitioned), and for a
//     position row's name, what the rows it was made from had handled
//     beyond its own position after a re-partitioning, as an opaque text
//     the processing package writes and reads;
//   - the members table: the runners that share a partitioned processor,
//     each with an expiry timed by the database's clock, renewed by their
//     heartbeats, so that each can tell how many live runners there are.

// partitionsSchema is the DDL of the partitions table, the same on both
// databases.
func partitionsSchema(t tables) string {
	return `CREATE TABLE IF NOT EXISTS ` + t.partitions + ` (
			name text PRIMARY KEY,
			partitions integer NOT NULL DEFAULT 0,
			handled text NOT NULL DEFAULT ''
		)`
}

// membersSchema is the DDL of the members table, the same on both
// databases: lease_until is in milliseconds of the database's clock.
func membersSchema(t tables) string {
	return `CREATE TABLE IF NOT EXISTS ` + t.members + ` (
			name text NOT NULL,
			owner text NOT NULL,
			lease_until bigint NOT NULL,
			PRIMARY KEY (name, owner)
		)`
}

// partitionQueries are the statements of partitions.go.
type partitionQueries struct {
	layout, initLayout, setLayout string
	hasPosition                   string
	handled, setHandled           string
	clearHandled, deleteLayout    string
	fence, upsertPosition         string
	deletePosition                string
	join, expire, members, leave  string
}

func newPartitionQueries(t tables, p func(int) string, nowMillis string) partitionQueries {
	pt, pos, mt := t.partitions, t.positions, t.members
	return partitionQueries{
		layout:       "SELECT partitions FROM " + pt + " WHERE name = " + p(1),
		initLayout:   "INSERT INTO " + pt + " (name, partitions) VALUES (" + p(1) + ", " + p(2) + ") ON CONFLICT (name) DO NOTHING",
		setLayout:    "INSERT INTO " + pt + " (name, partitions) VALUES (" + p(1) + ", " + p(2) + ") ON CONFLICT (name) DO UPDATE SET partitions = excluded.partitions",
		hasPosition:  "SELECT COUNT(*) FROM " + pos + " WHERE name = " + p(1) + " AND position > 0",
		handled:      "SELECT handled FROM " + pt + " WHERE name = " + p(1),
		setHandled:   "INSERT INTO " + pt + " (name, handled) VALUES (" + p(1) + ", " + p(2) + ") ON CONFLICT (name) DO UPDATE SET handled = excluded.handled",
		clearHandled: "UPDATE " + pt + " SET handled = '' WHERE name = " + p(1),
		deleteLayout: "DELETE FROM " + pt + " WHERE name = " + p(1),
		// fence bumps the epoch of a row (taking its lock on PostgreSQL)
		// and returns its position and its live lease's owner.
		fence: "UPDATE " + pos + " SET epoch = epoch + 1 WHERE name = " + p(1) +
			" RETURNING position, CASE WHEN lease_until > " + nowMillis + " THEN owner ELSE '' END",
		upsertPosition: "INSERT INTO " + pos + " (name, position, epoch) VALUES (" + p(1) + ", " + p(2) + ", 1) ON CONFLICT (name) DO UPDATE SET " +
			"position = excluded.position, epoch = " + pos + ".epoch + 1, owner = '', lease_until = 0",
		deletePosition: "DELETE FROM " + pos + " WHERE name = " + p(1),
		join: "INSERT INTO " + mt + " (name, owner, lease_until) VALUES (" + p(1) + ", " + p(2) + ", " + nowMillis + " + " + p(3) + ") " +
			"ON CONFLICT (name, owner) DO UPDATE SET lease_until = excluded.lease_until",
		expire:  "DELETE FROM " + mt + " WHERE name = " + p(1) + " AND lease_until <= " + nowMillis,
		members: "SELECT owner FROM " + mt + " WHERE name = " + p(1) + " AND lease_until > " + nowMillis + " ORDER BY owner",
		leave:   "DELETE FROM " + mt + " WHERE name = " + p(1) + " AND owner = " + p(2),
	}
}

// Partitions returns the number of partitions of the processor name: 0
// when it has never been partitioned (its one position row is its name's).
func (s *Store) Partitions(ctx context.Context, name string) (int, error) {
	k, err := s.partitions(ctx, s.db, name)
	if err != nil {
		return 0, fail("read partitions", name, "", err)
	}
	return k, nil
}

func (s *Store) partitions(ctx context.Context, ex execer, name string) (int, error) {
	var k int
	err := ex.QueryRowContext(ctx, s.q.part.layout, name).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return k, err
}

// InitPartitions records k as the number of partitions of the processor
// name if it has no layout yet and has never run unpartitioned (it has no
// position row under its name past position 0), and returns the number of partitions it
// has then: k when it recorded it (or another process recorded the same),
// the recorded layout otherwise, and 1 for a processor that has run
// unpartitioned, which must be re-partitioned instead.
func (s *Store) InitPartitions(ctx context.Context, name string, k int) (int, error) {
	if k < 1 {
		return 0, fail("init partitions", name, "", invalid("%d partitions", k))
	}
	var current int
	err := s.Transaction(ctx, func(tx *gorm.DB) error {
		ex, err := txExecer(tx)
		if err != nil {
			return err
		}
		if current, err = s.partitions(ctx, ex, name); err != nil || current > 0 {
			return err
		}
		var n int
		if err := ex.QueryRowContext(ctx, s.q.part.hasPosition, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			current = 1
			return nil
		}
		if _, err := ex.ExecContext(ctx, s.q.part.initLayout, name, k); err != nil {
			return err
		}
		current, err = s.partitions(ctx, ex, name)
		return err
	})
	if err != nil {
		return 0, fail("init partitions", name, "", err)
	}
	return current, nil
}

// PartitionHandled returns what a re-partitioning recorded for the
// position row name about the events handled beyond its position ("" when
// nothing: see [Store.Repartition]).
func (s *Store) PartitionHandled(ctx context.Context, name string) (string, error) {
	var h string
	err := s.db.QueryRowContext(ctx, s.q.part.handled, name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fail("read partition", name, "", err)
	}
	return h, nil
}

// Repartition changes the layout of the processor name from the rows old
// (its layout must be from partitions; 1 for a processor never
// partitioned, whose one row is name) to to partitions, in one
// transaction: it fences every old row (bumping its epoch, so that a
// runner still working on one can never save again), reads them, and
// hands them to plan, which returns the new rows; it then writes them
// (each with a new epoch and no lease), records their Handled texts and
// the layout, and removes the old rows that are not new ones — except
// name's own row, which stays fenced, so that a process running the
// processor unpartitioned would find it behind. Missing old rows read as
// position 0. A plan's error rolls everything back and is returned
// wrapped.
func (s *Store) Repartition(ctx context.Context, name string, from int, old []string, to int, plan func(old []event.PartitionRow) ([]event.PartitionRow, error)) error {
	if from < 1 || to < 1 || len(old) != from {
		return fail("repartition", name, "", invalid("from %d partitions (%d rows) to %d", from, len(old), to))
	}
	err := s.Transaction(ctx, func(tx *gorm.DB) error {
		ex, err := txExecer(tx)
		if err != nil {
			return err
		}
		k, err := s.partitions(ctx, ex, name)
		if err != nil {
			return err
		}
		if k == 0 {
			k = 1
		}
		if k != from {
			return invalid("the processor has %d partitions, not %d", k, from)
		}
		rows := make([]event.PartitionRow, len(old))
		for i, n := range old {
			r := event.PartitionRow{Name: n}
			err := ex.QueryRowContext(ctx, s.q.part.fence, n).Scan(&r.Position, &r.Owner)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err := ex.QueryRowContext(ctx, s.q.part.handled, n).Scan(&r.Handled); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			rows[i] = r
		}
		next, err := plan(rows)
		if err != nil {
			return err
		}
		keep := map[string]bool{name: true}
		for _, r := range next {
			keep[r.Name] = true
			if _, err := ex.ExecContext(ctx, s.q.part.upsertPosition, r.Name, r.Position); err != nil {
				return err
			}
			if _, err := ex.ExecContext(ctx, s.q.part.setHandled, r.Name, r.Handled); err != nil {
				return err
			}
		}
		for _, r := range rows {
			if keep[r.Name] {
				continue
			}
			if _, err := ex.ExecContext(ctx, s.q.part.deletePosition, r.Name); err != nil {
				return err
			}
			if _, err := ex.ExecContext(ctx, s.q.part.deleteLayout, r.Name); err != nil {
				return err
			}
		}
		if to != 1 {
			// name's row, not a new row, forgets what it skipped.
			if _, err := ex.ExecContext(ctx, s.q.part.clearHandled, name); err != nil {
				return err
			}
		}
		_, err = ex.ExecContext(ctx, s.q.part.setLayout, name, to)
		return err
	})
	if _, ours := err.(*opError); err != nil && !ours {
		err = fail("repartition", name, "", err)
	}
	return err
}

// JoinMembers records owner as a live member of the runners that share
// the processor name, for d by the database's clock (a heartbeat renews
// it), forgets the members whose time ran out, and returns the live
// members, owner among them, sorted.
func (s *Store) JoinMembers(ctx context.Context, name, owner string, d time.Duration) ([]string, error) {
	if _, err := s.db.ExecContext(ctx, s.q.part.join, name, owner, d.Milliseconds()); err != nil {
		return nil, fail("join members", name, "", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.part.expire, name); err != nil {
		return nil, fail("join members", name, "", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q.part.members, name)
	if err != nil {
		return nil, fail("join members", name, "", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fail("join members", name, "", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("join members", name, "", err)
	}
	return out, nil
}

// LeaveMembers removes owner from the members of the processor name, so
// that the others take its share at their next heartbeat.
func (s *Store) LeaveMembers(ctx context.Context, name, owner string) error {
	if _, err := s.db.ExecContext(ctx, s.q.part.leave, name, owner); err != nil {
		return fail("leave members", name, "", err)
	}
	return nil
}
