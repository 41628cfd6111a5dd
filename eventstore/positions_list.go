package eventstore

import (
	"context"
	"time"
)

// ProcessorPosition is one processor's row in the positions table, as
// every process sharing the store sees it.
type ProcessorPosition struct {
	// Name is the processor's name.
	Name string
	// Position is the global position of the last event it has fully
	// handled.
	Position int64
	// Epoch is bumped by every lease acquisition and reset.
	Epoch int64
	// Owner is the holder of its lease, "" when no one holds a live one.
	Owner string
	// LeaseUntil is when the owner's lease expires, by the database's
	// clock; zero when Owner is "".
	LeaseUntil time.Time
	// Paused reports whether an operator paused it.
	Paused bool
	// LastError is the error it last stopped with, "" when none is
	// recorded; FailedAt is when it was recorded.
	LastError string
	FailedAt  time.Time
}

// ListPositions returns the rows of every processor that has one, by name.
func (s *Store) ListPositions(ctx context.Context) ([]ProcessorPosition, error) {
	rows, err := s.db.QueryContext(ctx, s.q.listPositions)
	if err != nil {
		return nil, fail("list positions", "", "", err)
	}
	defer rows.Close()
	var out []ProcessorPosition
	for rows.Next() {
		var (
			p                  ProcessorPosition
			leaseUntil, failed int64
			paused             int64
		)
		if err := rows.Scan(&p.Name, &p.Position, &p.Epoch, &p.Owner, &leaseUntil, &paused, &p.LastError, &failed); err != nil {
			return nil, fail("list positions", "", "", err)
		}
		if leaseUntil > 0 {
			p.LeaseUntil = time.UnixMilli(leaseUntil)
		}
		if failed > 0 {
			p.FailedAt = time.UnixMilli(failed)
		}
		p.Paused = paused != 0
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list positions", "", "", err)
	}
	return out, nil
}

// SetProcessorError records msg as the error the processor name stopped
// with, timed by the database's clock, so that other processes (a waiting
// query, the admin command) can see why it is not moving; an empty msg
// clears it. It does nothing when the processor has no row.
func (s *Store) SetProcessorError(ctx context.Context, name, msg string) error {
	if _, err := s.db.ExecContext(ctx, s.q.setFailure, name, msg); err != nil {
		return fail("record processor error", name, "", err)
	}
	s.posWake.broadcast()
	return nil
}

// SetPaused records whether an operator paused the processor name. It does
// nothing when the processor has no row.
func (s *Store) SetPaused(ctx context.Context, name string, paused bool) error {
	v := 0
	if paused {
		v = 1
	}
	if _, err := s.db.ExecContext(ctx, s.q.setPaused, name, v); err != nil {
		return fail("set paused", name, "", err)
	}
	s.posWake.broadcast()
	return nil
}
