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
// # Concurrency
//
// A processor handles one event at a time by default: a reactor whose side
// effect takes 20 ms handles at most 50 events a second. With
// [Options.Concurrency] above 1 it handles the events of up to that many
// streams at the same time, while the events of one stream are still
// handled in order, one at a time (a stream's next event starts only once
// its previous one is handled). It reads ahead of its position, up to
// BatchSize events (at least 4 × Concurrency) that are not yet behind it,
// and hands each event to its stream's queue.
//
// The position moves only past a contiguous prefix of handled events: an
// event handled ahead of an earlier one that is still running (or
// retrying) is not behind the saved position until that one is handled
// too. A crash therefore never skips an event; it repeats the events
// handled past the saved position, as a crash of a processor without
// concurrency repeats its batch. The position is saved when a batch's
// events are all handled, at least every second while events are being
// handled, and when the run ends — not per event. Side effects stay
// at-least-once; a reactor's emitted events stay exactly-once, their IDs
// depending only on the reactor and the triggering event.
//
// Failures stay per event and per stream: a failing event is retried in
// place, after its error handler's delay, while the other streams go on
// (within the read-ahead: their events past the failing one wait in
// memory, not saved, and reading stops once BatchSize of them are); a
// panic is recovered for its event alone. When the error handler gives
// up, a processor with [Options.Park] parks the event, and its stream's
// later events behind it, recorded with the save that passes them; one
// without stops, its position saved up to the failing event, and Run
// returns the error. When ctx ends (or a pause interrupts), the handlers
// in flight get the cancelled context and the position saved is the
// prefix handled by then.
//
// Which processors support it: a plain processor whose [Handler] is an
// [EventHandler], and a reactor without state. A projector's batch is one
// transaction in which its writes and its position commit (exactly-once),
// and a stateful reactor's batch commits its state the same way: both are
// refused with [ErrInvalid]. For those, and to spread any processor over
// several processes, split it into partitions by stream. Use concurrency
// when one process has room for more work but the handlers wait (on the
// network, a mail server, another service); use partitions when the
// database transaction per batch must stay, or one process's CPU is the
// limit. Middleware and [Options.OnError] must be safe for concurrent use
// with concurrency: middleware runs on the handlers' goroutines, OnError
// is called from them, one call at a time.
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
// # Partitions
//
// A processor with [Options.Partitions] K > 1 is split into K partitions
// by stream: a stream belongs to partition [event.PartitionOf](id, K), the
// FNV-1a 32-bit hash of its ID modulo K, which never changes. Each
// partition is a position row of its own ([PartitionName]: "name#j/K")
// with its own position, lease and epoch, so everything said above holds
// per partition: its batches are fenced, a projector's partition commits
// its tables with its own position (exactly once), a reactor's emitted
// events keep their deterministic IDs. A stream's events stay in order,
// as a stream lies in one partition. Status shows every partition
// ([Status.Partitions]); the processor's Position is the smallest of
// theirs, so [Processor.WaitFor] waits for all of them.
//
// Every partition reads all the events of the processor's types and moves
// past those of the other partitions' streams: reading is K times that of
// one processor, which costs little beside handlers that do I/O (measured
// in BENCHMARKS.md), but makes partitions no help for a projector whose
// handlers are cheap SQL.
//
// Under [Processor.RunOwned] (a runner), the processes running a
// partitioned processor share its partitions fairly: each renews a
// membership row (an owner ID and an expiry by the database's clock) every
// HeartbeatInterval, and with N live members sorted by owner ID, the one
// at index r holds K/N partitions, plus one if r < K mod N. A process
// holding more than its share releases the surplus at its next batch
// boundary; one holding less takes free partitions as they poll. When a
// process joins, the others hand partitions over within a batch and a
// heartbeat; when one dies, its membership and its leases expire after
// LeaseDuration, and the others take its partitions at their next poll.
// [Processor.Run] runs every partition in the calling process.
//
// A processor's number of partitions is recorded in the store the first
// time it runs or migrates. Changing it is an operation: stop every
// process running it, call [Repartition] (or the admin command
// "repartition NAME --to K"), start them again with the new Options.
// Repartition moves nothing past an event that was not handled and
// repeats nothing: the new partitions start from the smallest saved
// position of the old partitions whose streams they share, and skip the
// events those had handled already (the old layout and positions are
// recorded with them). From K to a multiple of K, each new partition
// simply inherits its old partition's position. An unpartitioned
// processor with a saved position is re-partitioned the same way (from
// 1), and K = 1 makes a partitioned one unpartitioned again. A processor
// whose store says it has another number of partitions than its Options
// does not run ([ErrInvalid]).
//
// Not supported with partitions, and refused with [ErrInvalid]: parking
// ([Options.Park]), versioned projectors (their builds and swaps). A reset
// resets every partition.
//
// Partitions or per-stream concurrency? Both keep each stream's events in
// order. Concurrency within one process costs no extra reads and suits
// handlers that wait on I/O (a 20 ms call): one process handles many
// events at once. Partitions spread a processor over processes, for work
// that one process cannot do — CPU, memory, connections, or a side effect
// that must not run all in one place — and keep a dead process's work
// moving; within a process, partitions also run concurrently, one
// goroutine each.
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
//
// # Parking poison events
//
// A processor stops (or retries for ever) at an event its handler cannot
// handle: every other stream waits behind one bad event. A processor with
// [Options.Park] parks such an event instead, once its error handler gives
// up on it (without an error handler: after [DefaultParkAttempts]
// attempts), and goes on: it records the event (position, stream, type,
// error, attempts, first and last failure) in the store's parked events
// ([Parking]; *eventstore.Store keeps them in its table
// "<prefix>parked_events") in the same transaction that moves its position
// past it. The events of the batch before it are committed first, so a
// crash at any moment leaves the event either not parked and not passed
// (it is attempted again) or parked once. Every failure the error handler
// sees can be parked: a handler's error or panic, an event of a type the
// registry does not know, data that does not decode.
//
// Per-stream order is kept: once a stream has a parked event, the
// processor parks its later events of that stream behind it (recorded as
// waiting on it, in the transaction that moves the position past them)
// instead of handling them, so no read model ever sees a stream's events
// out of order. Other streams go on at full speed. Every parking is logged
// at WARN with the event's position, stream and type and the error, and
// [Status] counts the parked events and dates the oldest.
//
// Parked events wait for an operator, in Go or through the admin command:
// [Processor.ListParked] lists them; RetryParked of the projector and
// reactor packages ([Processor.RetryParkedWith] for other kinds) handles a
// stream's parked events again, in order, once the handler (or the data,
// or the registry's upcasters) is fixed, and keeps them parked, their
// attempts counted, if one fails again; [Processor.SkipParked] removes
// them unhandled and logs who did it. A retry or skip may run while the
// processor runs, in any process: the processor checks a parked stream
// again in the store before parking its next event behind it.
//
// When to park, and what it costs. Park when one bad event must not hold
// up everything else — a read model serving many users, a reactor whose
// mail must go out — and when someone watches the parked count: until a
// retry, the stream's read model is behind (its later events wait), and
// [Processor.WaitFor] returns once the position has passed a parked
// event, although its effect is not there. A reactor's parked events are
// side effects not yet done. Do not park when a stream's events are
// worthless out of the company of the others' (a projection that sums
// across streams is wrong by the parked events until the retry), or when
// the failure is not the event's fault: failures that name no event (a
// lost database) are still retried or end the run as the error handler
// says (without one, retried without limit), and a processor that parks
// for a bug in its own handler parks every stream one by one. Parking
// costs nothing while no stream is parked; while some are, each batch with
// events of a parked stream checks that stream in the store once, and
// records its events there.
// Turning Park off leaves the parked events parked: retry or skip them.
// [Processor.Reset] forgets them, as the next run reads them again.
//
// # Metrics
//
// With Options.MeterProvider (or the global OpenTelemetry meter provider)
// a processor counts the events it handled and committed
// (cairn.processor.events) and its failed attempts by what followed —
// retry, park or stop (cairn.processor.failures, attribute
// cairn.processor.action) — with the attributes cairn.processor.name and
// cairn.processor.kind. The runner reports the gauges (position, lag in
// events and seconds, parked events, state); the table of every Cairn
// metric is in the documentation of package
// [github.com/cairnhq/cairn/runner].

// # Tracing
//
// A processor makes OpenTelemetry spans with the tracer of
// [Options.TracerProvider] (nil: the global provider as [New] finds it). A
// batch holds events written by many commands, each in its own trace, so:
//
//   - "cairn.process.batch" (kind consumer): one batch handed to the
//     [Handler], a trace of its own, with a link to the trace context of each
//     of its events that carries one in its metadata (the store writes it at
//     append time as "traceparent" and "tracestate"; at most 128 links).
//     Attributes: cairn.processor, cairn.processor.kind, cairn.batch.from
//     (the position before the batch), cairn.batch.through,
//     cairn.batch.events, cairn.batch.attempt (1, or the number of failures
//     in a row plus one), cairn.batch.saved (the position saved); a failed
//     batch records its error and has status Error.
//   - "cairn.process.event" (kind consumer): a typed handler's call for one
//     event ([Handlers.Handle], middleware included), the child of the
//     event's trace context — so that it belongs to the trace of the
//     command that wrote the event — with a link to its batch's span; an
//     event without trace context makes it the batch span's child instead.
//     Attributes: cairn.processor, cairn.processor.kind,
//     cairn.event.position, cairn.stream, cairn.event.type, cairn.event.id;
//     a failed call records its error.
//
// The handler's context carries the event's span, so what the handler
// appends (a reactor's emitted events) carries the same trace on. When a
// batch span does not record and an event has no trace context, no event
// span is made.
package processing
