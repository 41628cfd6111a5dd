package reactor

import (
	"fmt"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// checkConcurrency refuses processing.Options.Concurrency above 1 for a
// stateful reactor: its batch is one transaction in which its state, the
// events it emits and its position commit together, one event after
// another.
func checkConcurrency(name string, opts Options) error {
	if opts.State == nil || opts.Processing.Concurrency <= 1 {
		return nil
	}
	return fmt.Errorf("reactor: new %q: %w: concurrency %d: a stateful reactor commits its state and position in one transaction per batch, one event after another; split it into partitions instead",
		name, processing.ErrInvalid, opts.Processing.Concurrency)
}

// allowConcurrency lets a stateless reactor's handlers run for the events
// of different streams at the same time (processing.Options.Concurrency),
// each with its own Emitter. The IDs of the events an Emitter emits depend
// on the reactor's name, the triggering event's ID and the index of the
// emitted event only — not on the order in which the streams' handlers
// ran — so the events emitted again after a crash are still stored once.
func (r *Reactor) allowConcurrency() {
	r.handlers.PerEvent(func(e event.Event) *Emitter { return &Emitter{r: r, cause: e} })
}
