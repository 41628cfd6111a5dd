package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

// Versioned projections. A versioned projector keeps its read model in
// physical tables per version — [ProjectionTable](table, label), such as
// todos_v3 — and the queries read a view named like the table (todos) that
// selects everything from the active version's table. A new version is
// built beside the active one and swapped in by replacing the views, in one
// transaction with the rest of the swap: DDL is transactional on both
// SQLite and PostgreSQL, so every query sees either the old version or the
// new one, complete.
//
// The state of the versions is a row per version in the projection
// versions table: the projector, the version's label, the version number,
// its state ([ProjectionActive], [ProjectionBuilding], [ProjectionRetired]),
// its logical tables, the processor that builds it, and when it was
// created, swapped in and retired (by the database's clock). Changes of
// that state take a lock on the table (PostgreSQL: LOCK TABLE … IN SHARE
// ROW EXCLUSIVE MODE; SQLite: the write lock every write transaction
// takes), so that they, and the DDL that goes with them, happen one at a
// time whatever the number of processes.

// ErrProjectionState reports a change of a projection's versions that their
// current state does not allow: swapping a version that is not being built
// (another process swapped it or gave it up), and the like.
var ErrProjectionState = errors.New("eventstore: projection version state")

// ProjectionState is the state of a version of a projection.
type ProjectionState string

// The states of a projection version.
const (
	// ProjectionActive: the version the views point at. A projector has
	// at most one.
	ProjectionActive ProjectionState = "active"
	// ProjectionBuilding: being built beside the active version. A
	// projector has at most one.
	ProjectionBuilding ProjectionState = "building"
	// ProjectionRetired: replaced by a swap (or a build given up); its
	// tables wait to be dropped.
	ProjectionRetired ProjectionState = "retired"
)

// ProjectionVersion is a row of the projection versions table: one
// version of one projector's read model.
type ProjectionVersion struct {
	// Projector is the projector's name, which is also the name of the
	// processor that follows the active version.
	Projector string
	// Label names the version's tables: version 3 is built as "v3", a
	// rebuild of it as "v3r1", and so on.
	Label string
	// Version is the projector's version number, as declared in its code.
	Version int64
	State   ProjectionState
	// Tables are the logical names of the version's tables; the physical
	// ones are [ProjectionTable](table, Label).
	Tables []string
	// Builder is the name of the processor that builds the version beside
	// the active one ("" for a version that was active from the start).
	Builder string
	// CreatedAt, SwappedAt and RetiredAt are when the version was
	// created, made active and retired, by the database's clock; zero
	// when it has not been.
	CreatedAt, SwappedAt, RetiredAt time.Time
}

// ProjectionTable returns the physical name of a versioned projection's
// table in the version labelled label: table_label.
func ProjectionTable(table, label string) string { return table + "_" + label }

// projectionQueries are the statements of the projection versions table.
type projectionQueries struct {
	list, listAll, get, active, retiredBefore string
	insert, retire, activate, delete          string
	// fence bumps the epoch of a processor, clears its lease and returns
	// its position; setPosition and deletePosition set and remove a
	// processor's row (setPosition notifies waiters on PostgreSQL).
	fence, setPosition, deletePosition string
	// moveParked hands the parked events of processor p1 over to p2;
	// removeParked removes those of p1.
	moveParked, removeParked string
	// lock serializes changes of the versions (PostgreSQL); "" when the
	// transaction's write lock does it (SQLite).
	lock string
	// isTable counts the plain tables (not views) named p1.
	isTable string
}

const projectionColumns = "projector, label, version, state, tables, builder, created_at, swapped_at, retired_at"

func newProjectionQueries(t tables, p func(int) string, nowMillis string) projectionQueries {
	v := t.projectionVersions
	sel := "SELECT " + projectionColumns + " FROM " + v
	return projectionQueries{
		list:          sel + " WHERE projector = " + p(1) + " ORDER BY created_at, label",
		listAll:       sel + " ORDER BY projector, created_at, label",
		get:           sel + " WHERE projector = " + p(1) + " AND label = " + p(2),
		active:        sel + " WHERE projector = " + p(1) + " AND state = 'active'",
		retiredBefore: sel + " WHERE projector = " + p(1) + " AND state = 'retired' AND retired_at <= " + nowMillis + " - " + p(2) + " ORDER BY retired_at, label",
		insert: "INSERT INTO " + v + " (" + projectionColumns + ") VALUES (" + p(1) + ", " + p(2) + ", " + p(3) + ", " + p(4) + ", " + p(5) + ", " + p(6) +
			", " + nowMillis + ", CASE WHEN " + p(4) + " = 'active' THEN " + nowMillis + " ELSE 0 END, 0)",
		retire:         "UPDATE " + v + " SET state = 'retired', retired_at = " + nowMillis + " WHERE projector = " + p(1) + " AND label = " + p(2) + " AND state <> 'retired'",
		activate:       "UPDATE " + v + " SET state = 'active', swapped_at = " + nowMillis + " WHERE projector = " + p(1) + " AND label = " + p(2) + " AND state = 'building'",
		delete:         "DELETE FROM " + v + " WHERE projector = " + p(1) + " AND label = " + p(2),
		fence:          "UPDATE " + t.positions + " SET epoch = epoch + 1, owner = '', lease_until = 0 WHERE name = " + p(1) + " RETURNING position",
		setPosition:    "UPDATE " + t.positions + " SET position = " + p(2) + " WHERE name = " + p(1),
		deletePosition: "DELETE FROM " + t.positions + " WHERE name = " + p(1),
		moveParked:     "UPDATE " + t.parked + " SET processor = " + p(2) + " WHERE processor = " + p(1),
		removeParked:   "DELETE FROM " + t.parked + " WHERE processor = " + p(1),
	}
}

// projectionVersionsTable is the DDL of the projection versions table, the
// same on both databases.
func projectionVersionsTable(t tables) string {
	return `CREATE TABLE IF NOT EXISTS ` + t.projectionVersions + ` (
			projector text NOT NULL,
			label text NOT NULL,
			version bigint NOT NULL,
			state text NOT NULL,
			tables text NOT NULL,
			builder text NOT NULL DEFAULT '',
			created_at bigint NOT NULL,
			swapped_at bigint NOT NULL DEFAULT 0,
			retired_at bigint NOT NULL DEFAULT 0,
			PRIMARY KEY (projector, label)
		)`
}

// projectionVersionsIndex is the DDL of the index that keeps at most one
// version of a projector active and at most one building.
func projectionVersionsIndex(t tables) string {
	v := t.projectionVersions
	return `CREATE UNIQUE INDEX IF NOT EXISTS ` + v + `_live_idx ON ` + v + ` (projector, state) WHERE state <> 'retired'`
}

// projectionName matches a table name a projection version may have:
// letters, digits and underscores, optionally after a schema name.
var projectionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// projectionLabel matches a version label.
var projectionLabel = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

func checkTables(tables []string) error {
	for _, t := range tables {
		if !projectionName.MatchString(t) {
			return invalid("table name %q: want letters, digits and underscores", t)
		}
	}
	return nil
}

// ProjectionVersions returns the versions of the named projector, oldest
// first, or those of every projector (by name) when projector is "".
func (s *Store) ProjectionVersions(ctx context.Context, projector string) ([]ProjectionVersion, error) {
	var rows *sql.Rows
	var err error
	if projector == "" {
		rows, err = s.db.QueryContext(ctx, s.q.pv.listAll)
	} else {
		rows, err = s.db.QueryContext(ctx, s.q.pv.list, projector)
	}
	if err != nil {
		return nil, fail("list projection versions", projector, "", err)
	}
	vs, err := scanProjectionVersions(rows)
	if err != nil {
		return nil, fail("list projection versions", projector, "", err)
	}
	return vs, nil
}

func scanProjectionVersions(rows *sql.Rows) ([]ProjectionVersion, error) {
	defer rows.Close()
	var out []ProjectionVersion
	for rows.Next() {
		v, err := scanProjectionVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, rows.Close()
}

func scanProjectionVersion(row interface{ Scan(...any) error }) (ProjectionVersion, error) {
	var (
		v                         ProjectionVersion
		state, tables             string
		created, swapped, retired int64
	)
	if err := row.Scan(&v.Projector, &v.Label, &v.Version, &state, &tables, &v.Builder, &created, &swapped, &retired); err != nil {
		return ProjectionVersion{}, err
	}
	v.State, v.Tables = ProjectionState(state), strings.Fields(tables)
	v.CreatedAt, v.SwappedAt, v.RetiredAt = millisTime(created), millisTime(swapped), millisTime(retired)
	return v, nil
}

func millisTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// ProjectionVersionTx returns the version label of the named projector as
// tx (a transaction of the store's database) sees it; ok is false when
// there is none.
func (s *Store) ProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector, label string) (v ProjectionVersion, ok bool, err error) {
	return s.oneProjectionVersion(ctx, tx, "read projection version "+label, projector, s.q.pv.get, projector, label)
}

// ActiveProjectionVersionTx returns the active version of the named
// projector as tx sees it; ok is false when it has none. A projector's
// batch reads it in its transaction: the views and the active version's
// label change together, in the transaction of a swap, which also fences
// the processor that follows the active version.
func (s *Store) ActiveProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector string) (v ProjectionVersion, ok bool, err error) {
	return s.oneProjectionVersion(ctx, tx, "read active projection version", projector, s.q.pv.active, projector)
}

func (s *Store) oneProjectionVersion(ctx context.Context, tx *gorm.DB, op, projector, query string, args ...any) (ProjectionVersion, bool, error) {
	c, err := txConnOf(tx)
	if err != nil {
		return ProjectionVersion{}, false, fail(op, projector, "", err)
	}
	v, err := scanProjectionVersion(c.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return ProjectionVersion{}, false, nil
	}
	if err != nil {
		return ProjectionVersion{}, false, fail(op, projector, "", err)
	}
	return v, true, nil
}

// LockProjectionVersionsTx takes the lock that serializes changes of
// projection versions, for the rest of tx, and returns the versions of the
// named projector as they are under it. Call it before the other changes
// of versions in tx ([Store.AddProjectionVersionTx] and the like).
func (s *Store) LockProjectionVersionsTx(ctx context.Context, tx *gorm.DB, projector string) ([]ProjectionVersion, error) {
	const op = "lock projection versions"
	c, err := s.lockVersions(ctx, tx)
	if err != nil {
		return nil, fail(op, projector, "", err)
	}
	rows, err := c.QueryContext(ctx, s.q.pv.list, projector)
	if err != nil {
		return nil, fail(op, projector, "", err)
	}
	vs, err := scanProjectionVersions(rows)
	if err != nil {
		return nil, fail(op, projector, "", err)
	}
	return vs, nil
}

func (s *Store) lockVersions(ctx context.Context, tx *gorm.DB) (txConn, error) {
	c, err := txConnOf(tx)
	if err != nil {
		return nil, err
	}
	if s.q.pv.lock != "" {
		if _, err := c.ExecContext(ctx, s.q.pv.lock); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// AddProjectionVersionTx records v, a new version of v.Projector, in tx: a
// version being built (State [ProjectionBuilding]) or the first active
// one ([ProjectionActive]). The position of a version's builder, if it has
// one, is set to 0 (its epoch bumped, its parked events forgotten). For an active version, the position
// row of the projector is created (left as it is if it exists), and so
// are the views: for each table T of v.Tables, a view T that selects
// everything from ProjectionTable(T, v.Label), which must exist.
// CreatedAt and the other times are set by the database's clock. Call it
// after [Store.LockProjectionVersionsTx] in tx.
func (s *Store) AddProjectionVersionTx(ctx context.Context, tx *gorm.DB, v ProjectionVersion) error {
	op := "add projection version " + v.Label
	fail := func(err error) error { return fail(op, v.Projector, "", err) }
	switch {
	case v.State != ProjectionActive && v.State != ProjectionBuilding:
		return fail(invalid("state %q, want active or building", v.State))
	case !projectionLabel.MatchString(v.Label):
		return fail(invalid("label %q: want letters, digits and underscores", v.Label))
	}
	if err := checkTables(v.Tables); err != nil {
		return fail(err)
	}
	c, err := s.lockVersions(ctx, tx)
	if err != nil {
		return fail(err)
	}
	if _, err := c.ExecContext(ctx, s.q.pv.insert, v.Projector, v.Label, v.Version, string(v.State), strings.Join(v.Tables, " "), v.Builder); err != nil {
		return fail(err)
	}
	if v.Builder != "" {
		// The builder starts from the first event, whatever a row of
		// that name held (a leftover of a dropped version of the same
		// label), and fences whoever still ran it.
		for _, q := range []string{s.q.createPosition, s.q.resetPosition, s.q.pv.removeParked} {
			if _, err := c.ExecContext(ctx, q, v.Builder); err != nil {
				return fail(err)
			}
		}
	}
	if v.State == ProjectionActive {
		// The row of the processor that follows the active version.
		if _, err := c.ExecContext(ctx, s.q.createPosition, v.Projector); err != nil {
			return fail(err)
		}
		if err := replaceViews(ctx, c, nil, v); err != nil {
			return fail(err)
		}
	}
	return nil
}

// replaceViews points the views of the tables of to at its version,
// dropping first the views of the tables of from (the version that was
// active) and of to.
func replaceViews(ctx context.Context, c txConn, from []string, to ProjectionVersion) error {
	drop := append(append([]string(nil), from...), to.Tables...)
	seen := map[string]bool{}
	for _, t := range drop {
		if seen[t] {
			continue
		}
		seen[t] = true
		if _, err := c.ExecContext(ctx, "DROP VIEW IF EXISTS "+t); err != nil {
			return err
		}
	}
	for _, t := range to.Tables {
		if _, err := c.ExecContext(ctx, "CREATE VIEW "+t+" AS SELECT * FROM "+ProjectionTable(t, to.Label)); err != nil {
			return err
		}
	}
	return nil
}

// AdoptProjectionTablesTx renames to ProjectionTable(T, label) each table T
// of tables that exists as a plain table (not a view), in tx, and returns
// the names of those it renamed: how a projector that was not versioned
// hands its tables over to a version of its own. Call it after
// [Store.LockProjectionVersionsTx] in tx.
func (s *Store) AdoptProjectionTablesTx(ctx context.Context, tx *gorm.DB, tables []string, label string) ([]string, error) {
	const op = "adopt projection tables"
	if err := checkTables(tables); err != nil {
		return nil, fail(op, "", "", err)
	}
	c, err := s.lockVersions(ctx, tx)
	if err != nil {
		return nil, fail(op, "", "", err)
	}
	var adopted []string
	for _, t := range tables {
		var n int
		if err := c.QueryRowContext(ctx, s.q.pv.isTable, t).Scan(&n); err != nil {
			return nil, fail(op, t, "", err)
		}
		if n == 0 {
			continue
		}
		// The new name is bare: ALTER TABLE … RENAME keeps the schema.
		to := ProjectionTable(t[strings.LastIndexByte(t, '.')+1:], label)
		if _, err := c.ExecContext(ctx, "ALTER TABLE "+t+" RENAME TO "+to); err != nil {
			return nil, fail(op, t, "", err)
		}
		adopted = append(adopted, t)
	}
	return adopted, nil
}

// RetireProjectionVersionTx retires the version label of the named
// projector in tx: a build that is given up. Its tables stay until
// [Store.DropRetiredProjectionVersions]. Call it after
// [Store.LockProjectionVersionsTx] in tx.
func (s *Store) RetireProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector, label string) error {
	op := "retire projection version " + label
	c, err := s.lockVersions(ctx, tx)
	if err != nil {
		return fail(op, projector, "", err)
	}
	if _, err := c.ExecContext(ctx, s.q.pv.retire, projector, label); err != nil {
		return fail(op, projector, "", err)
	}
	return nil
}

// SwapProjectionVersionTx makes the version label of the named projector,
// which must be building, its active version, in tx:
//
//  1. it takes the versions' lock and checks that label is building
//     (else it fails with an error matching [ErrProjectionState]);
//  2. it fences the processor that follows the active version — the one
//     named like the projector: its epoch is bumped and its lease
//     cleared, so that no batch of it commits after this transaction —
//     and reads its position P;
//  3. it calls catchUp(P, read), which must bring the new version to at
//     least P in tx — handling the events the active version has and the
//     new one has not yet, which read returns: read(after, limit, types)
//     is [Store.ReadBatch] in tx, up to P — and save the builder's
//     position there, and returns the new version's position Q ≥ P;
//  4. it moves the active processor's position to Q, hands the events
//     the builder parked over to it (those of the old version are
//     forgotten), removes the builder's position row, retires the active
//     version, makes label active and points the views at its tables.
//
// When tx commits, every query through the views sees the new version,
// complete to Q, and the processor that follows the active version goes
// on from Q with the new version's tables; until then, the old version.
func (s *Store) SwapProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector, label string, catchUp func(active int64, read func(after int64, limit int, types ...string) (event.Batch, error)) (int64, error)) error {
	op := "swap projection version " + label
	fail := func(err error) error { return fail(op, projector, "", err) }
	vs, err := s.LockProjectionVersionsTx(ctx, tx, projector)
	if err != nil {
		return err
	}
	var active, build *ProjectionVersion
	for i := range vs {
		switch {
		case vs[i].State == ProjectionActive:
			active = &vs[i]
		case vs[i].Label == label && vs[i].State == ProjectionBuilding:
			build = &vs[i]
		}
	}
	if build == nil {
		return fail(errors.Join(ErrProjectionState, errors.New("version "+label+" is not being built")))
	}
	c, err := txConnOf(tx)
	if err != nil {
		return fail(err)
	}
	if _, err := c.ExecContext(ctx, s.q.createPosition, projector); err != nil {
		return fail(err)
	}
	var at int64
	if err := c.QueryRowContext(ctx, s.q.pv.fence, projector).Scan(&at); err != nil {
		return fail(err)
	}
	read := func(after int64, limit int, types ...string) (event.Batch, error) {
		return s.readBatchUpTo(ctx, c, after, at, limit, types)
	}
	to, err := catchUp(at, read)
	if err != nil {
		return err
	}
	if to < at {
		return fail(errors.Join(ErrProjectionState, errors.New("the new version is at "+strconv.FormatInt(to, 10)+", behind the active one at "+strconv.FormatInt(at, 10))))
	}
	if _, err := c.ExecContext(ctx, s.q.pv.setPosition, projector, to); err != nil {
		return fail(err)
	}
	if build.Builder != "" && build.Builder != projector {
		// The builder's work is done: its position, and the events it
		// parked, live on as the projector's; those the old version
		// parked go with it.
		for _, st := range []struct {
			q    string
			args []any
		}{
			{s.q.pv.removeParked, []any{projector}},
			{s.q.pv.moveParked, []any{build.Builder, projector}},
			{s.q.pv.deletePosition, []any{build.Builder}},
		} {
			if _, err := c.ExecContext(ctx, st.q, st.args...); err != nil {
				return fail(err)
			}
		}
	}
	var from []string
	if active != nil {
		if _, err := c.ExecContext(ctx, s.q.pv.retire, projector, active.Label); err != nil {
			return fail(err)
		}
		from = active.Tables
	}
	if _, err := c.ExecContext(ctx, s.q.pv.activate, projector, label); err != nil {
		return fail(err)
	}
	if err := replaceViews(ctx, c, from, *build); err != nil {
		return fail(err)
	}
	return nil
}

// readBatchUpTo is ReadBatch through c, with the head given: up to limit
// events after after and up to head. Every event up to head is committed
// (a processor has read past it), so no commit order needs minding.
func (s *Store) readBatchUpTo(ctx context.Context, c txConn, after, head int64, limit int, types []string) (event.Batch, error) {
	op := "read batch after " + strconv.FormatInt(after, 10)
	b := event.Batch{Through: after}
	if limit < 1 {
		return b, fail(op, "", "", invalid("limit %d, want 1 or more", limit))
	}
	if head <= after {
		return b, nil
	}
	tf := typesOf(types)
	args := tf.appendArgs(append(make([]any, 0, len(types)+3), after, head))
	args = append(args, limit)
	rows, err := c.QueryContext(ctx, s.q.readBatchOfSQL(tf, event.StreamFilter{}), args...)
	if err != nil {
		return b, fail(op, "", "", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := s.scanEvent(rows)
		if err != nil {
			return b, fail(op, "", "", err)
		}
		b.Events = append(b.Events, e)
	}
	if err := rows.Err(); err != nil {
		return b, fail(op, "", "", err)
	}
	if len(b.Events) > 0 {
		b.Through = b.Events[len(b.Events)-1].Position
	}
	if len(b.Events) < limit {
		b.Through = head
	}
	return b, nil
}

// DropRetiredProjectionVersions drops the tables of the named projector's
// versions that were retired at least olderThan ago (by the database's
// clock; 0 drops every retired version), and deletes their rows and their
// builders' positions and parked events, in one transaction. It returns the versions it
// dropped.
func (s *Store) DropRetiredProjectionVersions(ctx context.Context, projector string, olderThan time.Duration) ([]ProjectionVersion, error) {
	const op = "drop retired projection versions"
	var dropped []ProjectionVersion
	err := s.Transaction(ctx, func(tx *gorm.DB) error {
		c, err := s.lockVersions(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := c.QueryContext(ctx, s.q.pv.retiredBefore, projector, olderThan.Milliseconds())
		if err != nil {
			return err
		}
		vs, err := scanProjectionVersions(rows)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkTables(v.Tables); err != nil {
				return err
			}
			for _, t := range v.Tables {
				if _, err := c.ExecContext(ctx, "DROP TABLE IF EXISTS "+ProjectionTable(t, v.Label)); err != nil {
					return err
				}
			}
			if v.Builder != "" && v.Builder != projector {
				for _, q := range []string{s.q.pv.deletePosition, s.q.pv.removeParked} {
					if _, err := c.ExecContext(ctx, q, v.Builder); err != nil {
						return err
					}
				}
			}
			if _, err := c.ExecContext(ctx, s.q.pv.delete, projector, v.Label); err != nil {
				return err
			}
		}
		dropped = vs
		return nil
	})
	if err != nil {
		return nil, fail(op, projector, "", err)
	}
	return dropped, nil
}
