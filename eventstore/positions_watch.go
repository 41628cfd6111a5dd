package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// What a wait for processors' positions reads and is woken by
// (processing.WaitForPositions): any process sharing the database can wait
// until named processors have passed a global position, for
// read-your-writes across processes.
//
// Every commit that changes a processor's row in a way a waiter cares
// about — a position save, a recorded error, a pause — wakes the waiters:
// through this Store at once (the in-process signal: a projector's
// transaction signals once it has committed), and, on PostgreSQL, through
// any store on the database: the statement itself sends a NOTIFY on the
// store's positions channel, which PostgreSQL delivers when (and only if)
// the transaction commits. Like every notification, it is a wake-up hint:
// waiters also poll.

// positionsLinger is how long a store's PostgreSQL LISTEN connection for
// position commits stays open after the last wait has ended: a server
// whose requests wait one after another keeps one connection, instead of
// opening one per request. It then closes by itself.
const positionsLinger = time.Minute

// positionsChannelSQL returns the SQL expression of a store's positions
// channel: namespaced, like the events channel, by the current schema and
// the table prefix (which Options.Validate restricts to letters, digits
// and underscores, so it can stand in a literal). Both the statements that
// notify and the listener compute it in SQL, so they cannot disagree.
func positionsChannelSQL(prefix string) string {
	return "'cairn_p_' || md5(current_schema() || '." + prefix + "')"
}

// notifyPositionCommits makes the PostgreSQL statements that change what
// a waiter reads notify the positions channel, in the same statement: the
// notification goes out when the transaction commits (a projector's, with
// its read model), never before, and not at all if it rolls back. RETURNING
// evaluates the notification only for a row the statement changed.
func notifyPositionCommits(q *queries, prefix string) {
	notify := " RETURNING pg_notify(" + positionsChannelSQL(prefix) + ", '')"
	q.savePosition += notify
	q.setFailure += notify
	q.setPaused += notify
}

// newPositionsListener returns the listener of a PostgreSQL store's
// positions channel, which broadcasts wake, the store's in-process signal
// of position commits: one signal wakes the waiters, whichever process
// committed.
func newPositionsListener(names *pgNames, db *gorm.DB, opts Options, wake *signal) *pgListener {
	l := newPGListener(names, db, opts.Logger)
	l.sig, l.linger = wake, positionsLinger
	channelSQL := "SELECT " + positionsChannelSQL(opts.TablePrefix)
	l.channel = func(ctx context.Context) (string, error) {
		var ch string
		err := names.db.QueryRowContext(ctx, channelSQL).Scan(&ch)
		return ch, err
	}
	return l
}

// PositionsChanged returns a channel that is closed by the next commit
// that may have changed a processor's saved position, recorded error or
// pause flag: at once for commits through this Store; on PostgreSQL, also
// for those of any process on the database (LISTEN/NOTIFY); on SQLite,
// commits of other processes send no signal. Take the channel before
// reading the positions, so that a commit that lands during the read is
// not missed, and poll as well: a notification is a hint, and the channel
// may also close when nothing changed. Call release when done with the
// channel: on PostgreSQL the store holds a LISTEN connection while any
// channel is out, and for a minute after the last one is released.
func (s *Store) PositionsChanged() (changed <-chan struct{}, release func()) {
	release = func() {}
	if s.pgPos != nil {
		release = s.pgPos.acquire()
	}
	return s.posWake.wait(), release
}

// ProcessorProgress returns the saved position of the processor name, as
// every process sharing the database sees it, and says what stops it from
// reaching target: stopped is "" when nothing does (it has reached target,
// or it has not and may still: it runs, or has not started yet), and
// otherwise why it cannot get there without help — an operator paused it,
// it stopped after an error (see [Store.SetProcessorError]), or it parked
// the event at target (see [Store.Park]): its position has moved past that
// event, but the event's effect is not there until a retry. A processor
// without a row is at position 0, not stopped.
func (s *Store) ProcessorProgress(ctx context.Context, name string, target int64) (position int64, stopped string, err error) {
	var (
		paused      int64
		lastError   string
		parkedError string
		waitsOn     int64
		parked      bool
	)
	err = s.db.QueryRowContext(ctx, s.q.processorProgress, name, target).Scan(&position, &paused, &lastError, &parkedError, &waitsOn, &parked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, "", nil
	case err != nil:
		return 0, "", fail("read processor progress", name, "", err)
	case parked && waitsOn > 0:
		return position, fmt.Sprintf("the event at %d is parked behind the parked event at %d of its stream", target, waitsOn), nil
	case parked:
		return position, fmt.Sprintf("the event at %d is parked: %s", target, parkedError), nil
	case position >= target:
		return position, "", nil
	case lastError != "":
		return position, "stopped after an error: " + lastError, nil
	case paused != 0:
		return position, "paused", nil
	}
	return position, "", nil
}
