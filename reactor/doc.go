// Package reactor triggers side effects from events: a [Reactor] is an
// event stream processor (see package processing) whose handlers send
// mail, call other services, or emit new events back into the store.
// Handlers are registered per event type with [On] (or [MustOn], which
// panics where On returns an error, for set-up code):
//
//	r, err := reactor.New(store, "welcome-mail", reactor.Options{})
//	reactor.MustOn(r, func(ctx context.Context, e event.Event, d UserSignedUp, emit *reactor.Emitter) error {
//		if err := mailer.SendWelcome(ctx, d.Email); err != nil {
//			return err // retried per the error handler
//		}
//		_, err := emit.Emit(ctx, e.StreamID, WelcomeMailSent{})
//		return err
//	})
//	err = r.Migrate(ctx)
//	err = r.Run(ctx)
//
// # Delivery
//
// Handling is at-least-once: the position is saved after each batch and
// before a failing event, so after a crash the events since the last saved
// position are handled again, and after a failure the failing event is.
// Side effects should therefore be idempotent, or tolerate an occasional
// repeat.
//
// Emitted events are exactly-once. An [Emitter] gives each event an ID
// derived from the reactor's name, the triggering event's ID and the
// event's index among those emitted for it (a name-based UUID), and the
// store treats an append of events already stored under those IDs, at the
// same place, as a no-op. Emitted events also carry the triggering event's
// ID as causation ID and its correlation ID (or, when it has none, its ID)
// as correlation ID.
//
// # Parking
//
// With processing.Options.Park, a reactor parks an event its error
// handler gives up on instead of stopping (see package processing), and
// the later events of its stream behind it; the other streams go on.
// [Reactor.RetryParked] hands a stream's parked events to their handlers
// again, in order. Their emitted events get the IDs of the first attempt,
// so a retry never stores them twice, even after a crash or a retry that
// failed half-way; side effects are repeated as after any failure.
//
// # Reset
//
// A Reactor is a [processing.Processor] (it embeds one), so it has
// [processing.Processor.Reset]: the next run starts again from the first
// event and repeats every side effect since (the events it emits are
// still stored once). That is rarely what an operator wants of a reactor;
// reset projectors, whose handlers are exactly-once, and leave reactors
// where they are.
package reactor
