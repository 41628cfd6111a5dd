package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Ordering is how a PostgreSQL store keeps its one global order (a reader
// that has seen position P never later finds an event before P) while
// several processes append. It is chosen when the store's tables are
// created ([Store.Migrate]) and recorded in the database: a store opened
// with another ordering than its database's fails with an error matching
// [ErrOrderingMismatch]. SQLite has one writer at a time and knows only
// [OrderingLock].
type Ordering int

const (
	// OrderingLock, the default, allocates positions from a sequence under
	// a transaction-level advisory lock held through COMMIT: transactions
	// commit in position order, one at a time across processes. Positions
	// are small and nearly contiguous (failed appends and deleted streams
	// leave holes). Within a process, group commit makes concurrent appends
	// share a commit; writers in different processes queue on the lock,
	// one commit after the other.
	OrderingLock Ordering = iota
	// OrderingXID lets the transactions of every process commit at once,
	// PostgreSQL's group commit sharing their WAL flushes. Each event's
	// position is its transaction's ID (pg_current_xact_id, a 64-bit
	// xid8) times 65,536 plus its place in the transaction, and readers
	// read only the events of transactions older than the oldest one still
	// running on the database (the horizon, pg_snapshot_xmin), which can
	// no longer change. What it costs:
	//
	//   - Positions are sparse: consecutive events are often 65,536 or more
	//     apart. They still only grow and are never reused; never compute
	//     with them: [Store.Distance] counts the events between two.
	//   - A transaction holds at most [MaxXIDTransactionEvents] events: one
	//     append of more fails with [ErrInvalidArgument].
	//   - Readers wait for the horizon. Any transaction on the PostgreSQL
	//     cluster that has written something and is still open holds it —
	//     another application's batch job, a session left idle in a
	//     transaction, a prepared transaction — and holds back every
	//     reader of the store until it ends: the events committed after it
	//     began stay unread meanwhile. [Store.Horizon] says who holds it
	//     and for how long; the store's own write transactions end within
	//     Options.WriteTimeout.
	//   - A read of the global order (Head, ReadAll, ReadBatch, and so
	//     subscriptions) first waits, up to Options.HorizonWait, until
	//     every event committed before the call can be read, so that an
	//     append's events are in the reads that start after it returns; a
	//     read that waits longer answers with what it can read then.
	//   - Restoring the database into another cluster (pg_dump, logical
	//     replication) restarts transaction IDs below the stored positions:
	//     run [Store.Migrate] there before appending, which moves the
	//     positions past the stored ones; until then appends fail.
	OrderingXID
)

// MaxXIDTransactionEvents is the most events one transaction holds under
// [OrderingXID]: an event's position is its transaction's ID times this
// number plus its place in the transaction.
const MaxXIDTransactionEvents = 1 << xidShift

// xidShift is log2(MaxXIDTransactionEvents).
const xidShift = 16

// String returns "lock" or "xid", the names recorded in the database.
func (o Ordering) String() string {
	switch o {
	case OrderingLock:
		return "lock"
	case OrderingXID:
		return "xid"
	}
	return "Ordering(" + strconv.Itoa(int(o)) + ")"
}

// valid reports whether o is one of the orderings.
func (o Ordering) valid() bool { return o == OrderingLock || o == OrderingXID }

// ErrOrderingMismatch reports a store opened with another [Ordering] than
// the one its database was migrated with. Nothing was written.
var ErrOrderingMismatch = errors.New("eventstore: ordering mismatch")

// orderingError is an ErrOrderingMismatch that says both orderings.
type orderingError struct{ recorded, want string }

func (e *orderingError) Error() string { return "eventstore: " + e.msg() }
func (e *orderingError) msg() string {
	return fmt.Sprintf("ordering mismatch: the database was migrated with %s ordering, the store is opened with %s (Options.Ordering)", e.recorded, e.want)
}
func (e *orderingError) Is(target error) bool { return target == ErrOrderingMismatch }

// maxDistance is the most events [Store.Distance] counts.
const maxDistance = 1_000_000

// Distance returns how many events a reader that has read up to position
// from reads to reach position to (0 when to is not after from): the lag
// of a processor at from behind the head to, or its progress between two
// positions. Under lock ordering, where positions are nearly contiguous,
// it is to − from, which counts the holes that failed appends and deleted
// streams leave as events, at no cost. Under [OrderingXID], where
// consecutive events are often 65,536 or more positions apart, it counts
// the stored events, with an index scan, up to 1,000,000: a greater
// distance reads as 1,000,000.
func (s *Store) Distance(ctx context.Context, from, to int64) (int64, error) {
	if to <= from {
		return 0, nil
	}
	if s.hz == nil {
		return to - from, nil
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, s.hz.countSQL, from, to, maxDistance).Scan(&n); err != nil {
		return 0, fail("distance", "", "", err)
	}
	return n, nil
}

// Horizon says how far the readers of a store can read, and what holds
// them back. Its fields are plain values, for status pages and metrics.
type Horizon struct {
	// Ordering is the store's.
	Ordering Ordering
	// Head is the position of the newest committed event (0 when none).
	Head int64
	// Readable is the position up to which every event is final and
	// readers read: Head, except under [OrderingXID] while transactions
	// older than the newest event are still running.
	Readable int64
	// Held reports that committed events wait for the horizon (Head >
	// Readable). Normally that lasts a few milliseconds, while concurrent
	// appends commit.
	Held bool
	// XID is the horizon under OrderingXID: the ID of the oldest
	// transaction still running on the PostgreSQL cluster (the next one to
	// be started when none is); 0 otherwise.
	XID int64
	// HeldFor is how long transaction XID has been running, when one does:
	// from pg_stat_activity's xact_start when the store's role may see it
	// (a superuser, a member of pg_read_all_stats or the same role),
	// otherwise since this Store first saw it as the horizon (a lower
	// bound).
	HeldFor time.Duration
	// PID, Application and State describe the session running transaction
	// XID ("active", "idle in transaction", …), as far as pg_stat_activity
	// shows them; Prepared is the GID of a prepared transaction holding
	// it. All are empty when no transaction holds the horizon, or the
	// role may not see them.
	PID         int
	Application string
	State       string
	Prepared    string
}

// String describes h in one line, such as "horizon held by transaction
// 1234 (pid 56, psql, idle in transaction) for 73s: events after position
// 80876584960 wait".
func (h Horizon) String() string {
	if !h.Held {
		return fmt.Sprintf("horizon not held: every event up to position %d is readable", h.Readable)
	}
	var who []byte
	who = fmt.Appendf(who, "transaction %d", h.XID)
	var about []string
	if h.Prepared != "" {
		about = append(about, "prepared as "+strconv.Quote(h.Prepared))
	}
	if h.PID != 0 {
		about = append(about, "pid "+strconv.Itoa(h.PID))
	}
	if h.Application != "" {
		about = append(about, h.Application)
	}
	if h.State != "" {
		about = append(about, h.State)
	}
	for i, a := range about {
		if i == 0 {
			who = append(who, " ("...)
		} else {
			who = append(who, ", "...)
		}
		who = append(who, a...)
		if i == len(about)-1 {
			who = append(who, ')')
		}
	}
	return fmt.Sprintf("horizon held by %s for %s: events after position %d wait", who, h.HeldFor.Round(time.Second), h.Readable)
}
