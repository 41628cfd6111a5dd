package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
)

// A group-commit transaction can lose its connection at any moment: the
// server terminates the backend, the network drops, a timeout fires. When
// that happens after the COMMIT went out, the transaction may have
// committed, and nothing tells the store whether it did. The store then
// resolves the outcome of every append of the transaction before
// answering, through the event IDs it sent (its own or the caller's):
//
//   - it puts the appends back at the head of the writer's queue, marked
//     lost, and tries them again in a new transaction, on a new
//     connection, after a short pause;
//   - from then on it treats their event IDs as given by the caller
//     (idempotent appends): the new transaction looks the IDs up, and an
//     append whose events are stored already is answered with the stored
//     events, while one whose events are not is written now. The unique
//     index on event IDs makes this safe even if the lost transaction is
//     still running on the server and commits later: the second write
//     then fails on the index and is tried again, and finds the events;
//   - an append whose context ends, or whose database stays unreachable
//     for [lostRetryFor], before an answer is known is answered with an
//     [*OutcomeUnknownError] carrying its IDs — or, if no transaction
//     carrying it can have reached the server, with an error matching
//     [ErrUnavailable] alone, which a retry can never duplicate.

// lostRetryFor bounds how long the store keeps trying an append whose
// connection was lost (or could not be made) when its context allows
// longer: a database down for longer than this is reported, not waited
// out.
const lostRetryFor = 5 * time.Second

// reconnectFor bounds how long a subscription keeps reading again after
// failures matching ErrUnavailable with no good read in between: long
// enough to ride out a server restart or a failover, short enough that a
// database that is gone shows up as an error (in a processor's status,
// say) rather than as silence.
const reconnectFor = 30 * time.Second

// lostConn is the state of an append that a lost connection interrupted.
type lostConn struct {
	since time.Time // first loss
	tries int       // losses so far
	err   error     // the last loss, matching ErrUnavailable
	// maybeStored: a transaction carrying the append may have committed.
	maybeStored bool
}

// expired returns the error that ends a request that is not finished: its
// context ended, or it has been retried after lost connections for too
// long. It returns nil while the request may go on.
func (r *request) expired() error {
	err := r.ctx.Err()
	if r.lost == nil {
		return err
	}
	if err == nil && time.Since(r.lost.since) < lostRetryFor {
		return nil
	}
	if r.lost.maybeStored {
		return r.unknown(r.lost.err)
	}
	return r.lost.err
}

// unknown returns the *OutcomeUnknownError of r with the cause err.
func (r *request) unknown(err error) error {
	ids := make([]uuid.UUID, len(r.events))
	for i := range r.events {
		ids[i] = r.events[i].id
	}
	return &OutcomeUnknownError{IDs: ids, Err: err}
}

// readStored reads back the events of an append that found them stored
// already (an idempotent append, or one resolved after a lost
// connection). A read that fails with ErrUnavailable is tried again for
// up to lostRetryFor. If it still fails, an append that lost a connection
// before fails with an *OutcomeUnknownError: its caller may not know the
// IDs to append again with.
func (s *Store) readStored(ctx context.Context, req *request) ([]event.Event, error) {
	start := time.Now()
	for tries := 1; ; tries++ {
		stored, err := s.readRange(ctx, req.stream, req.replayFrom, len(req.events))
		if err == nil {
			return stored, nil
		}
		if errors.Is(err, ErrUnavailable) && ctx.Err() == nil && time.Since(start) < lostRetryFor {
			t := time.NewTimer(retryPause(tries))
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		if req.lost != nil {
			return nil, req.unknown(err)
		}
		return nil, err
	}
}

// lostConnection reports whether a write that failed with err lost its
// connection (or could not get one), so that the outcome is to be
// resolved, and returns err translated. ctx is the write's context: when
// its deadline (Options.WriteTimeout) cut the write short, that counts as a
// lost connection too.
func lostConnection(ctx context.Context, err error) (error, bool) {
	if err == nil || errors.Is(err, errRetryBatch) {
		return err, false
	}
	if ctx.Err() != nil {
		return &unavailableError{fmt.Errorf("write timeout: %w", err)}, true
	}
	if !transient(err) {
		return err, false
	}
	return translate(err), true
}

// retryLost prepares the requests of a batch whose transaction lost its
// connection with err for another try, and returns them to be queued
// again. It pauses first, longer with every loss in a row, so that a
// database that is down is not called in a tight loop.
func retryLost(ctx context.Context, live []*request, err error, maybeStored bool) []*request {
	tries := 0
	now := time.Now()
	for _, r := range live {
		if !r.deferred {
			// It was in the transaction: look its events up by ID from
			// now on.
			if r.lost == nil {
				r.lost = &lostConn{since: now}
			}
			r.lost.tries++
			r.lost.err = err
			r.lost.maybeStored = r.lost.maybeStored || maybeStored
			r.explicitIDs = true
			tries = max(tries, r.lost.tries)
		}
		r.err, r.replay, r.deferred, r.result = nil, false, false, nil
	}
	pause := retryPause(tries)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return live
}

// retryPause is the pause before the n-th try (from 1) after a lost
// connection: none after a first loss (a terminated backend, a reset
// connection: a new connection is likely to work), then 10ms, 20ms, … up
// to 250ms, so that a database that is down is not called in a tight loop
// and one that is back is used again soon.
func retryPause(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(10*time.Millisecond<<min(n-2, 5), 250*time.Millisecond)
}

// reconnect paces the reads of a subscription after failures that match
// ErrUnavailable: it retries them for up to reconnectFor in a row.
type reconnect struct {
	log   *slog.Logger
	tries int // failures in a row; the caller zeroes it after a good read
	since time.Time
}

// again reports whether to read again after err, once the pause is over;
// it is false for other errors, once the failures have lasted too long,
// and when ctx ends.
func (r *reconnect) again(ctx context.Context, err error) bool {
	if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
		return false
	}
	now := time.Now()
	if r.tries == 0 {
		r.since = now
	}
	if now.Sub(r.since) >= reconnectFor {
		return false
	}
	r.tries++
	pause := retryPause(r.tries)
	r.log.WarnContext(ctx, "subscription lost its connection; reading again", "error", err, "retry_in", pause)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
