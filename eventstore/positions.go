package eventstore

import (
	"context"
	"database/sql"
	"time"

	"gorm.io/gorm"
)

// execer runs statements: the store's database or a transaction of it.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Transaction runs fn in a transaction of the store's database and commits
// it when fn returns nil, or rolls it back: the transaction a projector's
// handlers write their read model in, together with its position
// ([Store.SavePositionTx]), and a stateful reactor its state, its position
// and the events it emits ([Store.AppendTx]). When the transaction appended
// events, the store wakes its subscribers once it commits.
func (s *Store) Transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var appended func() bool
	err := s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		flag, done := s.txs.begin(tx.Statement.ConnPool)
		defer done()
		appended = flag.Load
		return fn(tx)
	})
	if err != nil {
		return err
	}
	s.posWake.broadcast() // a position saved in it is committed now
	if appended != nil && appended() {
		s.wake.broadcast() // and so are the events appended in it
	}
	return nil
}

// txExecer returns what runs statements in tx, a transaction of the
// store's database (or the database itself).
func txExecer(tx *gorm.DB) (execer, error) {
	if tx == nil || tx.Statement == nil || tx.Statement.ConnPool == nil {
		return nil, invalid("nil transaction")
	}
	return tx.Statement.ConnPool, nil
}

// LoadPosition returns the saved position and epoch of the processor name,
// first creating its row (position 0, epoch 0) if it has none.
func (s *Store) LoadPosition(ctx context.Context, name string) (position, epoch int64, err error) {
	if _, err := s.db.ExecContext(ctx, s.q.createPosition, name); err != nil {
		return 0, 0, fail("load position", name, "", err)
	}
	if err := s.db.QueryRowContext(ctx, s.q.loadPosition, name).Scan(&position, &epoch); err != nil {
		return 0, 0, fail("load position", name, "", err)
	}
	return position, epoch, nil
}

// SavePosition moves the position of the processor name from from to to,
// if its row still has the epoch and the position from, and reports
// whether it did: false means the processor was reset, taken over by
// another owner, or moved by another instance since it read them.
func (s *Store) SavePosition(ctx context.Context, name string, epoch, from, to int64) (saved bool, err error) {
	saved, err = s.savePosition(ctx, s.db, name, epoch, from, to)
	if saved {
		s.posWake.broadcast()
	}
	return saved, err
}

// SavePositionTx is [Store.SavePosition] in tx, a transaction of the
// store's database (see [Store.Transaction]): the position commits with
// the transaction's other writes, or not at all.
func (s *Store) SavePositionTx(ctx context.Context, tx *gorm.DB, name string, epoch, from, to int64) (saved bool, err error) {
	ex, err := txExecer(tx)
	if err != nil {
		return false, fail("save position", name, "", err)
	}
	return s.savePosition(ctx, ex, name, epoch, from, to)
}

func (s *Store) savePosition(ctx context.Context, ex execer, name string, epoch, from, to int64) (bool, error) {
	res, err := ex.ExecContext(ctx, s.q.savePosition, to, name, epoch, from)
	if err != nil {
		return false, fail("save position", name, "", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("save position", name, "", err)
	}
	return n == 1, nil
}

// ResetPosition moves the position of the processor name back to 0 and
// bumps its epoch, which fences any instance of the processor still
// running: its next save moves nothing. It also removes the events the
// processor parked (see [Store.Park]), in the same transaction: it will
// read them again.
func (s *Store) ResetPosition(ctx context.Context, name string) error {
	err := s.Transaction(ctx, func(tx *gorm.DB) error {
		return s.ResetPositionTx(ctx, tx, name)
	})
	if _, ours := err.(*opError); err != nil && !ours {
		err = fail("reset position", name, "", err) // of the begin or commit
	}
	return err
}

// ResetPositionTx is [Store.ResetPosition] in tx, a transaction of the
// store's database (see [Store.Transaction]): to reset a projection's
// tables together with its position and parked events.
func (s *Store) ResetPositionTx(ctx context.Context, tx *gorm.DB, name string) error {
	ex, err := txExecer(tx)
	if err != nil {
		return fail("reset position", name, "", err)
	}
	return s.resetPosition(ctx, ex, name)
}

func (s *Store) resetPosition(ctx context.Context, ex execer, name string) error {
	if _, err := ex.ExecContext(ctx, s.q.resetPosition, name); err != nil {
		return fail("reset position", name, "", err)
	}
	if err := s.removeParkedOf(ctx, ex, name); err != nil {
		return fail("reset position", name, "", err)
	}
	// From 0, nothing handled is left to skip (see partitions.go).
	if _, err := ex.ExecContext(ctx, s.q.part.clearHandled, name); err != nil {
		return fail("reset position", name, "", err)
	}
	return nil
}

// AcquireLease takes the lease of the processor name for owner, for d by
// the database's clock, if no one else holds it (never held, released,
// expired, or held by owner itself), and bumps the epoch: from then on,
// only position saves with the new epoch succeed, so the previous owner is
// fenced even if it is still running. The processor's row must exist (see
// [Store.LoadPosition]). It returns the new epoch and the saved position;
// ok is false when another owner holds the lease.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, d time.Duration) (epoch, position int64, ok bool, err error) {
	rows, err := s.db.QueryContext(ctx, s.q.acquireLease, owner, d.Milliseconds(), name, owner)
	if err != nil {
		return 0, 0, false, fail("acquire lease", name, "", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&epoch, &position); err != nil {
			return 0, 0, false, fail("acquire lease", name, "", err)
		}
		ok = true
	}
	if err := rows.Err(); err != nil {
		return 0, 0, false, fail("acquire lease", name, "", err)
	}
	if err := rows.Close(); err != nil {
		return 0, 0, false, fail("acquire lease", name, "", err)
	}
	return epoch, position, ok, nil
}

// RenewLease extends the lease that owner holds on the processor name
// with epoch, for d from now by the database's clock, and reports whether
// it did: false means the lease is no longer held (another owner took
// over, or the processor was reset).
func (s *Store) RenewLease(ctx context.Context, name, owner string, epoch int64, d time.Duration) (renewed bool, err error) {
	res, err := s.db.ExecContext(ctx, s.q.renewLease, d.Milliseconds(), name, owner, epoch)
	if err != nil {
		return false, fail("renew lease", name, "", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("renew lease", name, "", err)
	}
	return n == 1, nil
}

// ReleaseLease gives up the lease that owner holds on the processor name
// with epoch, if it still holds it, so that a standby owner can take over
// at once.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string, epoch int64) error {
	if _, err := s.db.ExecContext(ctx, s.q.releaseLease, name, owner, epoch); err != nil {
		return fail("release lease", name, "", err)
	}
	return nil
}

// LeaseHolder returns the owner of the lease on the processor name ("" when
// none holds it or it has expired) and its saved position.
func (s *Store) LeaseHolder(ctx context.Context, name string) (owner string, position int64, err error) {
	if err := s.db.QueryRowContext(ctx, s.q.leaseHolder, name).Scan(&owner, &position); err != nil {
		return "", 0, fail("read lease", name, "", err)
	}
	return owner, position, nil
}
