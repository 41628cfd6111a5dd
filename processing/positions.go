package processing

import (
	"context"
	"fmt"

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
}

func (p positions) migrate(ctx context.Context) error {
	return p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := p.d.lockMigration(tx, p.table); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + p.table + ` (
			name text PRIMARY KEY,
			position bigint NOT NULL DEFAULT 0,
			epoch bigint NOT NULL DEFAULT 0
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
// fences any instance of it still running.
func (p positions) reset(ctx context.Context, db *gorm.DB, name string) error {
	return db.WithContext(ctx).Exec(`UPDATE `+p.table+` SET position = 0, epoch = epoch + 1 WHERE name = ?`, name).Error
}
