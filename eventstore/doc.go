// Package eventstore is Cairn's event store: append with optimistic
// concurrency, reads of one event, a stream or everything in global order,
// live subscriptions, stream deletion and snapshots — on SQLite or
// PostgreSQL through gorm.
//
// # Guarantees
//
//   - Optimistic concurrency per stream: an append states the version it
//     expects the stream to be at ([event.Any], [event.NoStream],
//     [event.StreamExists], [event.Exact]); a mismatch writes nothing and
//     returns an error matching [event.ErrVersionConflict]. Stream versions
//     are 1, 2, 3, … without holes.
//   - One global order: every event has a position, and a reader that has
//     seen position P never later finds an event before P, whatever the
//     number of writers and processes. Positions are not contiguous
//     (failed appends leave holes); never compute with them.
//   - Idempotent appends: events carry unique IDs; appending events whose
//     IDs are stored already at the same place is a no-op success.
//   - Atomic, durable appends: all events of an append are stored or none
//     is, and an acknowledged append survives a crash of the process.
//
// # How appends are written
//
// Concurrent Append calls on one Store are grouped into one database
// transaction (group commit): the first caller to find the writer idle
// commits at once; callers that arrive meanwhile queue up and the next
// transaction takes them all, checking each append's expected version in
// turn. A failing check fails only its own append. On PostgreSQL the
// positions are allocated under a transaction-level advisory lock taken
// right before the insert, so transactions commit in position order across
// processes; on SQLite the database's single writer lock does the same.
//
// On PostgreSQL, [OrderingXID] (Options.Ordering, chosen at Migrate) drops
// that lock so that the writers of many processes commit at once: an
// event's position is made of its transaction's ID, and readers read only
// below the oldest transaction still running on the database. Positions
// are then sparse, and a long transaction anywhere on the database holds
// readers back ([Store.Horizon] says which); see [Ordering].
//
// # Processor positions
//
// The store also keeps the positions of event stream processors (package
// processing, and the projectors and reactors built on it) in its table
// "<prefix>processor_positions": one row per processor name, with the
// position of the last event the processor has fully handled, an epoch,
// and a lease (an owner and an expiry timed by the database's clock). Every
// position save ([Store.SavePosition], [Store.SavePositionTx]) is a
// compare-and-set in one statement on the epoch and the position it moves
// from; taking a lease ([Store.AcquireLease]) and resetting a position bump
// the epoch, so an owner that has been replaced can never move the
// position again.
//
// Processors that park poison events (processing.Options.Park) record them
// in the table "<prefix>parked_events", one row per processor and
// position: the event's stream and type, the error, the failed attempts,
// the first and last failure, and the parked event it waits on. The row
// holds no payload: the event stays in the events table. [Store.Park]
// records parked events and moves the position in one transaction
// ([Store.ParkTx] in the caller's); [Store.ParkedEvents],
// [Store.ParkedStreams] and [Store.ParkedCount] read them;
// [Store.Unpark] (or [Store.UnparkTx]) removes them, all or none. A
// position reset removes the processor's parked events with it.
//
// # Stream subscriptions and appends in a transaction
//
// [Store.SubscribeStream] follows one stream from a version, catch-up then
// live, woken like [Store.Subscribe], and ends with an error matching
// [event.ErrStreamDeleted] when the stream is deleted.
// [Store.SubscribeBatchesOf] follows one stream or a category of streams
// in global order, for event stream processors limited to them.
//
// [Store.AppendTx] and [Store.AppendAllTx] append in a transaction of the
// caller's ([Store.Transaction]), so that events commit with other writes
// — a stateful reactor's tables and position — or not at all. On
// PostgreSQL they take the ordering lock until the transaction ends:
// appends in a transaction come last, right before its commit.
//
// # Projection versions
//
// The versions of versioned projectors (package projector) live in the
// table "<prefix>projection_versions": one row per version, active,
// building or retired, with its tables. The store owns the SQL around
// them: the views that give queries a stable name over the active
// version's tables, the swap that replaces them in one transaction with
// the fence of the projector's follower ([Store.SwapProjectionVersionTx]),
// and the drop of retired versions ([Store.DropRetiredProjectionVersions]);
// the projector's handlers write their version's tables through gorm.
//
// # Lost connections
//
// Errors that a lost, refused or timed-out connection causes match
// [ErrUnavailable] and wrap the driver's error; no call returns a raw
// driver error for them. The store deals with them itself where it can:
//
//   - An append whose transaction loses its connection may have committed
//     (the COMMIT may have reached the server when the answer was lost).
//     The store resolves that before answering every append of the
//     transaction: it tries them again on a new connection, looking their
//     event IDs up first — its own IDs or the caller's — so that an
//     append that was stored is answered with its stored events and one
//     that was not is written once. If the database stays out of reach
//     for a few seconds, or the append's context ends first, the append
//     fails with an [*OutcomeUnknownError] that carries its event IDs:
//     appending again with those IDs ([event.WithIDs]) is safe.
//   - A subscription reads again from its last event after such an error,
//     for up to half a minute of failures in a row, and its LISTEN
//     connection on PostgreSQL reconnects on its own.
//   - Reads return the error: a read can be tried again as it is.
//   - A DeleteStream that fails with it may have deleted the stream:
//     calling it again then fails with [event.ErrStreamDeleted].
//
// # Databases
//
// [New] takes a *gorm.DB. Open SQLite with package
// github.com/cairnhq/cairn/eventstore/sqlitedb (which sets the pragmas the
// store relies on: WAL, busy timeout, immediate transactions, synchronous
// FULL by default) and PostgreSQL with [OpenPostgres]. On PostgreSQL the
// store needs the pgx driver (gorm.io/driver/postgres uses it) and wakes
// subscribers with LISTEN/NOTIFY on a dedicated connection; on SQLite, an
// append wakes the subscribers of the same Store at once. Both poll as a
// fallback, so writes from other processes are always seen.
//
// If you open the *gorm.DB yourself, keep as many idle connections as you
// have concurrent callers (sql.DB.SetMaxIdleConns): database/sql keeps two
// by default, and opening a PostgreSQL connection costs more than an
// append. [OpenPostgres] keeps [PostgresMaxIdleConns].
//
// # Metrics
//
// With Options.MeterProvider (or the global OpenTelemetry meter provider)
// the store measures its appends — duration, with failures by kind
// (error.type), events, and the size of each group commit — and its reads
// (cairn.append.* and cairn.read.*). [Store.RecordedAt] gives the recorded
// times a processor's lag in seconds is computed from. The table of every
// Cairn metric is in the documentation of package
// [github.com/cairnhq/cairn/runner].

// # Tracing
//
// The store makes OpenTelemetry spans with the tracer of
// Options.TracerProvider (nil: the global provider, otel.GetTracerProvider,
// as [New] finds it). It depends on the OpenTelemetry API only. It makes
// spans only inside a recorded trace — when the caller's context carries
// a span that records, as a command's, an HTTP request's or a processor's
// does — and never starts a trace of its own: an append outside any trace,
// or with no tracer provider set, costs no allocation more than without
// tracing.
//
//   - "cairn.append" (kind producer): an [Store.Append], [Store.AppendTx]
//     or [Store.AppendAllTx] call, child of the caller's span. Attributes:
//     cairn.stream, cairn.append.events (its events),
//     cairn.append.expected_version, cairn.append.position (the last
//     event's, on success); for Append, the group commit it joined —
//     cairn.append.batch.appends and cairn.append.batch.events (its size),
//     cairn.append.batch.leader (whether this call ran the transaction) and
//     cairn.append.queued (seconds from the call to the start of the
//     transaction that took it) — and a link to that commit's span; for the
//     transactional appends, cairn.append.in_transaction, cairn.append.appends
//     and links to the trace contexts the appends carry already in their
//     metadata (a stateful reactor's emits). A failed append records its
//     error and has status Error.
//   - "cairn.append.commit" (internal): one group-commit transaction, child
//     of its leader's append span, linked to the append span of every call
//     it carries. Attributes: cairn.append.batch.appends,
//     cairn.append.batch.events, cairn.append.commit.attempts.
//
// An append records the trace context of its span in the metadata of its
// events, as the W3C Trace Context headers would carry it: the key
// "traceparent" (e.g. "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
// and, when the trace state is not empty, "tracestate". It does so only when
// the append's context carries a valid span context and the append's own
// metadata has no "traceparent" (an append that gives one keeps it). Stored
// metadata stays a JSON object of plain strings, readable without
// OpenTelemetry; an untraced append stores no trace keys. Processors (package
// processing) read them back to put the handling of each event in the trace
// of the command that wrote it.
package eventstore
