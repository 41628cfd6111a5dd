package processing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PositionWatcher is what [WaitForPositions] needs of a store: the
// processors' saved positions as every process sharing the store sees
// them, and a wake-up when they may have changed. *eventstore.Store
// implements it.
type PositionWatcher interface {
	// ProcessorProgress returns the saved position of the processor name
	// and, when something stops it from reaching target (it was paused,
	// it stopped after an error, it parked the event at target), why; ""
	// when nothing does.
	ProcessorProgress(ctx context.Context, name string, target int64) (position int64, stopped string, err error)
	// PositionsChanged returns a channel closed by the next commit that
	// may have changed a processor's row, and the function that gives the
	// channel back.
	PositionsChanged() (changed <-chan struct{}, release func())
}

// ErrBlocked reports a processor that cannot reach the position a wait is
// for without help: it stopped after an error, an operator paused it, or
// it parked the event the wait is for. The error is a [*BlockedError]
// naming it.
var ErrBlocked = errors.New("processing: processor cannot reach the position")

// BlockedError reports the processor that stops a [WaitForPositions] from
// succeeding, and why. It matches [ErrBlocked].
type BlockedError struct {
	// Processor is the processor's name.
	Processor string
	// Position is its saved position, and Target the position waited for.
	Position, Target int64
	// Reason says what stops it, as the store reports it.
	Reason string
}

// Error describes the processor and what stops it.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("processing: %s cannot reach position %d (it is at %d): %s", e.Processor, e.Target, e.Position, e.Reason)
}

// Is reports whether target is [ErrBlocked].
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// waitPollInterval is how often [WaitForPositions] reads the positions when
// no commit woke it: the fallback for commits whose signal it cannot get
// (other processes on SQLite) or missed (a lost LISTEN connection).
const waitPollInterval = 250 * time.Millisecond

// WaitForPositions blocks until each of the named processors has saved a
// position at or past position — so a projection shows the event there and
// every event before it — and returns nil. It reads the positions the
// processors saved in the store, so it sees processors running in any
// process that shares the store's database, and is woken by their commits
// (on PostgreSQL, through LISTEN/NOTIFY; on SQLite, for commits in this
// process, with polling as the fallback for the others).
//
// A processor that reads only some event types still moves its position
// past the events of other types, so waiting for any global position is
// right for it. WaitForPositions returns a [*BlockedError] (matching
// [ErrBlocked]) at once when a processor that has not reached position
// cannot get there without help: it stopped after an error (recorded by
// the processor when its error handler gives up) or was paused; or when
// one has parked the event at position (Options.Park), whose effect is
// missing although its position has moved past it. When ctx
// ends first, it returns an error that names the processors still behind
// and wraps ctx's error. A position of 0 or less, or no names, needs no
// wait.
func WaitForPositions(ctx context.Context, store PositionWatcher, position int64, names ...string) error {
	if position <= 0 || len(names) == 0 {
		return nil
	}
	pending := append([]string(nil), names...)
	at := make(map[string]int64, len(names))
	// Take the wake-up channel before reading, so that a commit that
	// lands during the read is not missed; take the next one before
	// giving this one back, so the store's listener stays up throughout.
	changed, release := store.PositionsChanged()
	defer func() { release() }()
	ticker := time.NewTicker(waitPollInterval)
	defer ticker.Stop()
	for {
		var behind []string
		for _, name := range pending {
			pos, stopped, err := store.ProcessorProgress(ctx, name, position)
			if err != nil {
				if ctx.Err() != nil {
					return waitError(position, pending, at, ctx.Err())
				}
				return fmt.Errorf("processing: wait for %s to reach %d: %w", name, position, err)
			}
			if stopped != "" {
				return &BlockedError{Processor: name, Position: pos, Target: position, Reason: stopped}
			}
			at[name] = pos
			if pos < position {
				behind = append(behind, name)
			}
		}
		pending = behind
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return waitError(position, pending, at, ctx.Err())
		case <-changed:
		case <-ticker.C:
		}
		next, nextRelease := store.PositionsChanged()
		release()
		changed, release = next, nextRelease
	}
}

// waitError is the error of a wait that ctx ended: it names the
// processors still behind, and where they are.
func waitError(position int64, behind []string, at map[string]int64, err error) error {
	parts := make([]string, len(behind))
	for i, name := range behind {
		parts[i] = fmt.Sprintf("%s at %d", name, at[name])
	}
	return fmt.Errorf("processing: wait for position %d: %s: %w", position, strings.Join(parts, ", "), err)
}
