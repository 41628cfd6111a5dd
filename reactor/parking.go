package reactor

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// RetryParked retries the parked events of the stream streamID (see
// [processing.Options.Park]) and returns how many it handled. It hands
// them to their handlers in order, one at a time, removing each from the
// parked events once its handler has returned. The events a handler
// emits get the same IDs as when the reactor first handled the event, so
// a retry never stores them twice, whatever an earlier attempt (or
// retry) emitted before it failed or crashed; side effects, as always,
// are at-least-once. When a handler fails again, that event and the
// stream's later ones stay parked, the failing one's attempts counted
// and its error recorded, and RetryParked returns the error.
//
// A retry may run while the reactor runs, in this process or another;
// the reactor then parks the stream's new events behind what is still
// parked, and handles them again once nothing is. RetryParked freezes
// the reactor's handlers, as Run does.
func (r *Reactor) RetryParked(ctx context.Context, streamID string) (int, error) {
	if r.state != nil {
		// In a transaction, with the reactor's state (state_parking.go).
		return r.RetryParkedWith(ctx, streamID, r.replayState)
	}
	return r.RetryParkedWith(ctx, streamID, r.replay)
}

// replay is the reactor's [processing.ReplayFunc].
func (r *Reactor) replay(ctx context.Context, parked []event.Parked, events []event.Event) (int, error) {
	st, ok := r.store.(processing.Parking)
	if !ok {
		return 0, fmt.Errorf("%w: the store (%T) keeps no parked events", processing.ErrInvalid, r.store)
	}
	for i, e := range events {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		if e.Position != 0 { // 0: no longer stored
			if err := r.handlers.Handle(ctx, &Emitter{r: r, cause: e}, e); err != nil {
				return i, err
			}
		}
		removed, err := st.Unpark(ctx, r.Name(), parked[i].Position)
		if err != nil {
			return i, err
		}
		if !removed {
			return i, processing.ErrNotParked
		}
	}
	return len(events), nil
}
