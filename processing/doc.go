// Package processing is the event stream processor (ESP) core that
// projectors and reactors share: a named [Processor] that reads the events
// of its types from the store in batches, from its saved position on, and
// then follows new ones as they are stored, with a tracked position and an
// error policy. Users normally meet it through the projector and reactor
// packages, which provide the [Handler].
//
// # Kinds of processors
//
// [New] makes a processor of any [Handler]. The projector and reactor
// packages are kinds of processors made with [NewKind]: a processor with a
// table of typed handlers ([Handlers], registered with [On], one per event
// type, closed once the processor runs), whose kind adds only how a batch
// is handed to them and when the position is saved. A kind embeds the
// *Processor, so its name, status, runs and waits are the processor's.
// [Guard] is the one place a panic is turned into an error: a handler's,
// a batch's, and (in package runner) a whole run's.
//
// # Positions
//
// A processor's position is the global position of the last event it has
// fully handled; events of types it does not read move it too, so the
// distance to the store's head is real work. The store keeps the positions
// ([Positions]; *eventstore.Store keeps them in its table
// "<prefix>processor_positions", created by its Migrate and by
// [Processor.Migrate]), one row per processor name. Each row also holds an
// epoch: every position update is one statement that checks the epoch the
// processor started with and the position the batch started from, so an
// instance that has been reset or replaced, or that raced another instance
// of the same name, can never move the position again ([ErrFenced]); for a
// projector, whose position commits with its writes, this also rolls back
// the racing batch.
//
// # Ownership
//
// [Processor.Run] runs wherever it is called: two instances of a processor
// race, and the one that finds its position moved stops with [ErrFenced].
// [Processor.RunOwned] (which the runner package uses) runs a processor
// shared by several processes in one of them at a time: each row of the
// position table also holds a lease — an owner ID and an expiry timed by
// the database's clock — that the owner renews by heartbeat. The others
// stand by ([Standby]) and take the lease once it expires or is released;
// taking it bumps the epoch, so the one statement that saves a position
// fences the previous owner even if it is still running.
//
// # Errors
//
// A handler's error or panic, an event whose type the registry does not
// know, or data that does not decode — all are failures, passed to the
// processor's [ErrorHandler]: [NoRetry] stops the processor (state
// [Failed], Run returns the error); [ConstantRetry] and [ExponentialBackoff]
// wait and then re-read and re-handle from the last saved position, up to
// an optional number of attempts. An event is never skipped. Each failure
// is logged with log/slog (processor, position, stream, type, attempt, next
// delay) and passed to [Options.OnError]; [Processor.Status] shows the
// state, position, attempts and last error. When the error handler gives
// up, the processor also records the error in the store, where every
// process sharing it can see it, and clears it when it runs again.
//
// # Waiting for positions
//
// [WaitForPositions] is read-your-writes across processes: after a write
// at a global position, it returns once each named processor's saved
// position has reached it — so what those processors build shows the
// write. It reads the positions table, is woken by position commits
// (NOTIFY on PostgreSQL, the store's signal in this process on SQLite)
// and polls as a fallback; it reports a processor that cannot get there
// (stopped after an error, paused) at once, as a [*BlockedError].
// [Processor.WaitFor] waits for a processor running in this process.
package processing
