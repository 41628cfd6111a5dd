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
// A processor with no saved position yet starts from the first event, or
// from the head of the store or a given position ([Options.Start],
// [FromHead], [After]); the start is recorded once, as its first saved
// position, when the processor is first registered (its first Migrate or
// Run), so a restart never jumps ahead.
//
// # Streams
//
// A processor reads every stream, or only one stream or a category of
// streams — those whose IDs start with a prefix, such as "todo-"
// ([Options.Streams], an [event.StreamFilter]). The store filters the
// events; the position moves past the events of the other streams as it
// moves past events of other types.
//
// # Middleware
//
// [Options.Middleware] wraps the handling of each event by a projector or
// a reactor, as command middleware wraps a command's: logging ([Logging]),
// metrics, tracing, timeouts ([Timeout]), checks of the event. Each
// [Middleware] sees the event and the processor (its name and kind), and
// calls the next one; the first given is outermost.
//
// # Pause
//
// [Processor.Pause] stops a processor from handling events until
// [Processor.Resume], in every process that runs it: the flag is kept in
// the processor's row of the position table (so the admin command can set
// it too) and read by each running processor every
// [Options.PauseCheckInterval]. A paused processor keeps its lease, shows
// the state [Paused], and resumes from its saved position.
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
// state, position, attempts and last error.
package processing
