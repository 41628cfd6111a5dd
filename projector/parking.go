package projector

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// txParking is what a projector that parks events needs of its store
// besides a [Store] (and [processing.Parking]): its parked events, in the
// transactions of its batches and retries. *eventstore.Store implements
// it.
type txParking interface {
	// ParkTx records parked events in tx.
	ParkTx(ctx context.Context, tx *gorm.DB, parked []event.Parked) error
	// UnparkTx removes the processor's parked events at the positions
	// in tx, all or none: removed is false when one of them is not
	// parked, and the caller then rolls back.
	UnparkTx(ctx context.Context, tx *gorm.DB, processor string, positions ...int64) (removed bool, err error)
}

// checkParking checks that a projector that parks has a store that can.
func checkParking(store Store, opts Options) error {
	if store == nil || !opts.Processing.Park {
		return nil
	}
	if _, ok := store.(txParking); !ok {
		return fmt.Errorf("%w: Park needs a store that keeps parked events (%T does not)", processing.ErrInvalid, store)
	}
	return nil
}

// parkTx returns what records a batch's parked events in its transaction
// tx.
func (p *Projector) parkTx(tx *gorm.DB) processing.ParkFunc {
	return func(ctx context.Context, parked []event.Parked) error {
		st, ok := p.store.(txParking)
		if !ok {
			return fmt.Errorf("%w: the store (%T) keeps no parked events", processing.ErrInvalid, p.store)
		}
		return st.ParkTx(ctx, tx, parked)
	}
}

// RetryParked retries the parked events of the stream streamID (see
// [processing.Options.Park]) and returns how many it applied. It applies
// them in order, in one transaction that also removes them from the
// parked events, with the Begin and Flush hooks around them as for a
// batch: the projection gets the stream's events exactly once, in order,
// whatever fails or crashes. When a handler fails again, the events
// before the failing one are applied and removed (in a transaction of
// their own), and the failing one and those after it stay parked, the
// failing one's attempts counted and its error recorded; RetryParked
// then returns the error.
//
// Fix the handler (or the data, or add the upcaster) first: a retry runs
// the projector's current handlers. A retry may run while the projector
// runs, in this process or another; the projector then parks the
// stream's new events behind what is still parked, and handles them
// again once nothing is. RetryParked freezes the projector's handlers,
// as Run does.
func (p *Projector) RetryParked(ctx context.Context, streamID string) (int, error) {
	return p.RetryParkedWith(ctx, streamID, p.replay)
}

// replay is the projector's [processing.ReplayFunc].
func (p *Projector) replay(ctx context.Context, parked []event.Parked, events []event.Event) (int, error) {
	err := p.replayTx(ctx, parked, events)
	if err == nil {
		return len(events), nil
	}
	fa, ok := errors.AsType[*failedAt](err)
	if !ok {
		return 0, err
	}
	if fa.index == 0 {
		return 0, fa.err
	}
	// Apply the events before the failing one, as a batch does.
	if perr := p.replayTx(ctx, parked[:fa.index], events[:fa.index]); perr != nil {
		return 0, perr
	}
	return fa.index, fa.err
}

// replayTx applies events and removes them from the parked events, in
// one transaction.
func (p *Projector) replayTx(ctx context.Context, parked []event.Parked, events []event.Event) error {
	st, ok := p.store.(txParking)
	if !ok {
		return fmt.Errorf("%w: the store (%T) keeps no parked events", processing.ErrInvalid, p.store)
	}
	positions := make([]int64, len(parked))
	for i, pk := range parked {
		positions[i] = pk.Position
	}
	// One at a time with the batches, whose hooks it shares.
	p.batch.Lock()
	defer p.batch.Unlock()
	return p.store.Transaction(ctx, func(tx *gorm.DB) error {
		// Removing them first makes a concurrent retry of the same
		// events wait here, and then find them gone.
		removed, err := st.UnparkTx(ctx, tx, p.Name(), positions...)
		if err != nil {
			return err
		}
		if !removed {
			return processing.ErrNotParked
		}
		// A versioned projector's retry writes the active version.
		var sc scope
		if p.ver != nil {
			sc = p.activeScope
		}
		hctx, err := p.begin(ctx, tx, sc)
		if err != nil {
			return err
		}
		for i, e := range events {
			if e.Position == 0 {
				continue // no longer stored
			}
			if err := p.handlers.Handle(hctx, tx, e); err != nil {
				return &failedAt{index: i, err: err}
			}
		}
		return p.flush(hctx, tx)
	})
}
