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
// # Concurrency
//
// A reactor handles one event at a time unless
// processing.Options.Concurrency says otherwise: with Concurrency 32, the
// handlers of up to 32 streams run at the same time, each stream's events
// still in order, one after another — a reactor whose side effect waits
// 20 ms on a mail server then handles up to 1,600 events a second instead
// of 50. Its position moves only past events that are handled with every
// event before them, so a crash skips nothing; it repeats the events
// handled ahead of the saved position (side effects at-least-once, as
// always), and the events they emit are still stored once: an emitted
// event's ID depends on the reactor's name, the triggering event and its
// index among those emitted for it, not on which handler ran first.
// Failures, retries and parking stay per event and per stream: a failing
// stream is retried (or parked) while the others go on. Handlers,
// middleware and OnError must then be safe for concurrent use (each
// handler call has its own [Emitter]).
//
// A stateful reactor ([Options.State]) cannot run concurrently — its batch
// is one transaction that commits its state and position, one event after
// another — and New refuses it with processing.ErrInvalid: split it into
// partitions by stream instead. See package processing for when to use
// which.
//
// # State
//
// A reactor that must remember what earlier events told it — a process
// manager, or the todo app's notifier, which needs a todo's stakeholder
// when the todo is completed — keeps that state in tables of its own and
// is made stateful ([Options.State], handlers registered with [OnState]).
// Each of its batches is then one transaction of the store's database:
// the handlers write the tables through the transaction they are given,
// the events they emit are appended in it, last (Emit queues them), and
// the position is saved in it, so the state, the position and the emitted
// events commit together or not at all. The state is exactly-once: after
// a crash, or a failing event, it is exactly what handling each event once
// gives, with no upserts or idempotence of the tables' own (unless an
// operator may move its position back without its tables, as cairn reset
// --to does). Each event is handled in a savepoint, so that a failing
// event's writes and emits are dropped while the events before it commit.
// Side effects stay at-least-once. Parked events (below) are recorded in
// the batch's transaction too, and retried in one with the state.
//
// A stateful reactor's transaction is open while its handlers run, side
// effects included: on SQLite it holds the database's write lock, which
// appends of other processes wait for (up to their busy timeout), so keep
// its batches small when its side effects are slow. On PostgreSQL, the
// appends take the store's ordering lock at the end of the batch only.
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
// A Reactor is a [processing.Processor] (it embeds one), and has
// [Reactor.Reset]: the next run starts again from the first
// event and repeats every side effect since (the events it emits are
// still stored once). That is rarely what an operator wants of a reactor;
// reset projectors, whose handlers are exactly-once, and leave reactors
// where they are. A stateful reactor's Reset also empties its tables
// (State.Tables), in the same transaction.
//
// A reactor added to a store with history usually starts from the head
// (processing.Options.Start set to processing.FromHead()): it reacts to
// what happens from then on, not to the past.
package reactor
