package reactor

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// txParking is what a stateful reactor that parks events needs of its
// store: its parked events, in the transactions of its batches and
// retries. *eventstore.Store implements it.
type txParking interface {
	// ParkTx records parked events in tx.
	ParkTx(ctx context.Context, tx *gorm.DB, parked []event.Parked) error
	// UnparkTx removes the processor's parked events at the positions
	// in tx, all or none.
	UnparkTx(ctx context.Context, tx *gorm.DB, processor string, positions ...int64) (removed bool, err error)
}

// parkTx returns what records a stateful batch's parked events in its
// transaction tx, with its state and position.
func (r *Reactor) parkTx(tx *gorm.DB) processing.ParkFunc {
	return func(ctx context.Context, parked []event.Parked) error {
		st, ok := r.store.(txParking)
		if !ok {
			return fmt.Errorf("%w: the store (%T) keeps no parked events in transactions", processing.ErrInvalid, r.store)
		}
		return st.ParkTx(ctx, tx, parked)
	}
}

// replayState is a stateful reactor's [processing.ReplayFunc]: the
// parked events are handled in one transaction, each in a savepoint with
// its removal from the parked events, and the events they emit are
// appended at its end. An event that fails again keeps its state writes,
// its emits and its removal out, and the events before it commit.
func (r *Reactor) replayState(ctx context.Context, parked []event.Parked, events []event.Event) (int, error) {
	st, ok := r.store.(txParking)
	if !ok {
		return 0, fmt.Errorf("%w: the store (%T) keeps no parked events in transactions", processing.ErrInvalid, r.store)
	}
	tctx := context.WithoutCancel(ctx) // see handleStateBatch
	n := 0
	var herr error
	err := r.sstore.Transaction(tctx, func(tx *gorm.DB) error {
		n, herr = 0, nil
		var q []queued
		for i, e := range events {
			if herr = ctx.Err(); herr != nil {
				break
			}
			k := len(q)
			herr = r.sstore.SavepointTx(tctx, tx, func() error {
				// Removing it first makes a concurrent retry of the same
				// event wait here, and then find it gone.
				removed, err := st.UnparkTx(tctx, tx, r.Name(), parked[i].Position)
				switch {
				case err != nil:
					return err
				case !removed:
					return processing.ErrNotParked
				case e.Position == 0: // no longer stored
					return nil
				}
				return r.handlers.Handle(ctx, &Emitter{r: r, cause: e, tx: tx, queue: &q}, e)
			})
			if herr != nil {
				q = q[:k]
				break
			}
			n++
		}
		if n == 0 {
			return errNothingHandled
		}
		if len(q) > 0 {
			if _, err := r.sstore.AppendAllTx(tctx, tx, q); err != nil {
				return fmt.Errorf("reactor: emit: %w", err)
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errNothingHandled):
		return 0, herr
	case err != nil:
		return 0, err
	}
	return n, herr
}
