package eventstore

import (
	"context"
	"database/sql"
	"errors"
)

// startQueries are the statements of a processor's start position and
// pause flag.
type startQueries struct {
	// createAt creates a processor's row at a position, unless it has
	// one: parameters name, position.
	createAt string
	// paused reads a processor's pause flag: parameter name.
	paused string
}

func newStartQueries(t tables, p func(int) string) startQueries {
	pt := t.positions
	return startQueries{
		createAt: "INSERT INTO " + pt + " (name, position, epoch) VALUES (" + p(1) + ", " + p(2) + ", 0) ON CONFLICT (name) DO NOTHING",
		paused:   "SELECT paused FROM " + pt + " WHERE name = " + p(1),
	}
}

// CreatePosition creates the row of the processor name at position, with
// epoch 0, unless it has a row already, and reports whether it did: the
// start position of a processor that must not start from the first event
// (from the head of the store, say). The first call for a name decides;
// later calls, and [Store.LoadPosition] (which creates a missing row at
// 0), never move a position that exists, so a processor that records its
// start this way before it first loads its position starts there once,
// and resumes from its saved position ever after.
func (s *Store) CreatePosition(ctx context.Context, name string, position int64) (created bool, err error) {
	if position < 0 {
		return false, fail("create position", name, "", invalid("negative position %d", position))
	}
	res, err := s.db.ExecContext(ctx, s.q.start.createAt, name, position)
	if err != nil {
		return false, fail("create position", name, "", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("create position", name, "", err)
	}
	return n == 1, nil
}

// Paused reports whether the processor name is paused (see
// [Store.SetPaused]); false when it has no row.
func (s *Store) Paused(ctx context.Context, name string) (bool, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, s.q.start.paused, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fail("read paused", name, "", err)
	}
	return v != 0, nil
}
