package processing

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// positionsTable is the name of the position table after the store's
// table prefix.
const positionsTable = "processor_positions"

// positions is the table of processor positions in the store's database:
// one row per processor name, with the position of the last event it has
// fully handled and an epoch. Every position update compares the epoch it
// read when it started and the position it moves from (see save), so an
// owner that has been replaced — by a reset, by the runner's lease
// takeover, or by another instance that got there first — can never move
// the position again.
type positions struct {
	db    *gorm.DB
	table string
	d     dialect
}

func newPositions(db *gorm.DB, prefix string) (positions, error) {
	var d dialect
	switch name := db.Dialector.Name(); name {
	case "sqlite":
		d = sqliteDialect{}
	case "postgres":
		d = postgresDialect{}
	default:
		return positions{}, fmt.Errorf("%w: dialect %q, want sqlite or postgres", ErrInvalid, name)
	}
	return positions{db: db, table: prefix + positionsTable, d: d}, nil
}

// dialect is what differs between SQLite and PostgreSQL; the
// implementations are in dialect_sqlite.go and dialect_postgres.go.
type dialect interface {
	// lockMigration serializes concurrent migrations, inside tx.
	lockMigration(tx *gorm.DB, table string) error
	// nowMillis is an SQL expression for the database's clock, in
	// milliseconds since the Unix epoch: leases are timed by it, never by
	// the clocks of the processes that share them.
	nowMillis() string
}

func (p positions) migrate(ctx context.Context) error {
	return p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := p.d.lockMigration(tx, p.table); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + p.table + ` (
			name text PRIMARY KEY,
			position bigint NOT NULL DEFAULT 0,
			epoch bigint NOT NULL DEFAULT 0,
			owner text NOT NULL DEFAULT '',
			lease_until bigint NOT NULL DEFAULT 0
		)`).Error
	})
}

// load creates the processor's row if it has none and returns its
// position and epoch.
func (p positions) load(ctx context.Context, name string) (position, epoch int64, err error) {
	db := p.db.WithContext(ctx)
	if err := db.Exec(`INSERT INTO `+p.table+` (name, position, epoch) VALUES (?, 0, 0) ON CONFLICT (name) DO NOTHING`, name).Error; err != nil {
		return 0, 0, err
	}
	row := db.Raw(`SELECT position, epoch FROM `+p.table+` WHERE name = ?`, name).Row()
	if err := row.Scan(&position, &epoch); err != nil {
		return 0, 0, err
	}
	return position, epoch, nil
}

// save moves the processor's position from from to position, through db
// (the batch's transaction, or the store's database), if the row still has
// the epoch the processor started with and the position it last saw. This
// one statement is the only place a running processor writes its
// position: the compare-and-set makes a reset, a takeover by another owner,
// or a second instance of the processor that committed first, fence this
// one, so that no event is ever handled twice into a projection.
func (p positions) save(ctx context.Context, db *gorm.DB, name string, epoch, from, position int64) error {
	res := db.WithContext(ctx).Exec(`UPDATE `+p.table+` SET position = ? WHERE name = ? AND epoch = ? AND position = ?`,
		position, name, epoch, from)
	if res.Error != nil {
		return fmt.Errorf("save position %d: %w", position, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("save position %d: %w", position, ErrFenced)
	}
	return nil
}

// reset moves the processor back to position 0 and bumps its epoch, which
// fences any instance of it still running (an owner under a lease takes
// the lease again, with a new epoch, and starts over).
func (p positions) reset(ctx context.Context, db *gorm.DB, name string) error {
	return db.WithContext(ctx).Exec(`UPDATE `+p.table+` SET position = 0, epoch = epoch + 1 WHERE name = ?`, name).Error
}

// lease is the ownership of a processor's row: its owner and the epoch the
// owner's position updates must find.
type lease struct {
	owner    string
	epoch    int64
	position int64 // when the lease was taken
}

// acquire takes the lease of the processor name for owner, for d, if no
// one else holds it (never held, released, expired by the database's
// clock, or held by owner itself), bumping the epoch: from then on, only
// position updates with the new epoch succeed, so the previous owner is
// fenced even if it is still running. The row must exist (see load). ok
// is false when another owner holds the lease.
func (p positions) acquire(ctx context.Context, name, owner string, d time.Duration) (l lease, ok bool, err error) {
	now := p.d.nowMillis()
	rows, err := p.db.WithContext(ctx).Raw(`UPDATE `+p.table+`
		SET owner = ?, epoch = epoch + 1, lease_until = `+now+` + ?
		WHERE name = ? AND (owner = '' OR owner = ? OR lease_until <= `+now+`)
		RETURNING epoch, position`, owner, d.Milliseconds(), name, owner).Rows()
	if err != nil {
		return lease{}, false, fmt.Errorf("acquire lease: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		l.owner = owner
		if err := rows.Scan(&l.epoch, &l.position); err != nil {
			return lease{}, false, fmt.Errorf("acquire lease: %w", err)
		}
		ok = true
	}
	if err := rows.Err(); err != nil {
		return lease{}, false, fmt.Errorf("acquire lease: %w", err)
	}
	return l, ok, rows.Close()
}

// holder returns the owner of the processor's lease ("" when none holds
// it or it has expired) and its position.
func (p positions) holder(ctx context.Context, name string) (owner string, position int64, err error) {
	row := p.db.WithContext(ctx).Raw(`SELECT CASE WHEN lease_until > `+p.d.nowMillis()+` THEN owner ELSE '' END, position FROM `+p.table+` WHERE name = ?`, name).Row()
	if err := row.Scan(&owner, &position); err != nil {
		return "", 0, fmt.Errorf("read lease: %w", err)
	}
	return owner, position, nil
}

// renew extends l for d from now by the database's clock. It fails with
// ErrFenced when l is no longer held: another owner took over, or the
// processor was reset.
func (p positions) renew(ctx context.Context, name string, l lease, d time.Duration) error {
	res := p.db.WithContext(ctx).Exec(`UPDATE `+p.table+` SET lease_until = `+p.d.nowMillis()+` + ? WHERE name = ? AND owner = ? AND epoch = ?`,
		d.Milliseconds(), name, l.owner, l.epoch)
	if res.Error != nil {
		return fmt.Errorf("renew lease: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("renew lease: %w", ErrFenced)
	}
	return nil
}

// release gives l up, if it is still held, so that a standby owner can
// take over at once.
func (p positions) release(ctx context.Context, name string, l lease) error {
	err := p.db.WithContext(ctx).Exec(`UPDATE `+p.table+` SET owner = '', lease_until = 0 WHERE name = ? AND owner = ? AND epoch = ?`,
		name, l.owner, l.epoch).Error
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}
