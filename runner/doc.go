// Package runner runs a program's event stream processors — projectors and
// reactors — in one process: what a background processor process runs.
//
//	r, err := runner.New(store, runner.Options{}, todoList, welcomeMail)
//	http.Handle("/status", r.Handler())
//	err = runner.RunMain(ctx, r) // until SIGINT or SIGTERM
//
// # Supervision
//
// Each processor runs in its own goroutine. A failing event is retried as
// the processor's error handler says while the other processors go on; a
// processor whose error handler gives up (or that panics outside its
// handlers) is marked [Failed] and stays down, and [Runner.Run] returns
// its error once the runner stops.
//
// # Several processes
//
// Any number of runner processes may run the same processors against one
// database, to survive the loss of a machine: each processor runs in one
// process at a time, the others standing by ([Standby]). Ownership is a
// lease in the processor's row of the position table, timed by the
// database's clock, renewed by a heartbeat every
// [processing.Ownership].HeartbeatInterval; when an owner dies or loses its
// connection, its lease expires after LeaseDuration and a standby process
// takes it. Taking a lease bumps the processor's epoch, and every batch's
// position update checks that epoch in the same statement — in a
// projector, in the same transaction as the projection's writes — so an
// owner that was paused (a long GC, SIGSTOP, a frozen VM) past its lease
// cannot commit anything when it resumes: its batch rolls back and it
// stands by. This holds on PostgreSQL and on a SQLite file shared by
// several processes. A runner that stops gracefully releases its leases,
// so that a standby process takes over at once.
//
// A paused owner may be paused in the middle of a batch's transaction,
// holding row locks that the new owner's writes wait for. On PostgreSQL,
// set idle_in_transaction_session_timeout (no longer than the lease) on
// the processors' connections — in a postgres:// URL, as the query
// parameter idle_in_transaction_session_timeout=15000 — so that the server
// ends such a transaction and the new owner goes on. On SQLite, a process
// paused in a write transaction holds the database's only write lock: the
// others wait until it resumes and is fenced. Either way nothing is
// committed twice.
//
// # Shutdown
//
// [RunMain] (or [SignalContext] with [Runner.Run]) stops the runner on
// SIGINT or SIGTERM: no processor starts a new batch, a projector's batch
// in flight rolls back (its position and projection stay as committed), a
// reactor saves the position of the events it has handled, the leases are
// released, and Run returns within [Options].GracePeriod.
//
// # Status
//
// [Runner.Status] reports, for every processor, its kind, [State],
// position, the store's head, lag, rate, failed attempts and last error;
// [Runner.Handler] serves the same as JSON. While a processor catches up,
// the runner logs its progress every [Options].ProgressInterval. While a
// versioned projector builds a new version beside the active one, its
// status has a [RebuildStatus] — target version, builder, position, head,
// rate and estimated time to the swap — and the process that builds it
// logs the build's progress at the same interval.
//
// # Pause and resume
//
// [Runner.Pause] and [Runner.Resume] (or a POST to .../<name>/pause and
// .../<name>/resume below [Runner.Handler]) pause a processor and resume
// it. The pause is recorded in the processor's row of the position table,
// so it holds in every process that runs the processor, survives
// restarts, and can be set by another program (the admin command, through
// the store's SetPaused); a running processor reads the flag every
// processing.Options.PauseCheckInterval. A paused processor keeps its
// lease — it goes on renewing it, so no standby process takes it over —
// handles nothing, and shows the state [Paused]; resumed, it goes on from
// its saved position.
//
// # Metrics
//
// Cairn measures itself with the OpenTelemetry metrics API, and only the
// API: each part takes a metric.MeterProvider in its options
// (eventstore.Options, processing.Options, runner [Options]; nil means the
// global provider, otel.GetMeterProvider(), looked up when the part is
// made) and the program picks the SDK and the exporter (the todo example
// serves them to Prometheus). With no provider set, nothing is measured
// and the hot paths neither allocate nor read the clock for it. The
// metrics follow OpenTelemetry's semantic conventions; their names in
// Prometheus have dots as underscores, the unit s as the suffix _seconds,
// and counters the suffix _total (cairn_append_duration_seconds,
// cairn_processor_lag, cairn_processor_events_total).
//
//	metric                        instrument  unit        attributes          what
//	cairn.append.duration         histogram   s           db.system.name,     a Store.Append call, from call to answer
//	                                                      error.type          (queueing for the group commit included);
//	                                                      (failures),         with cairn.append.transaction=caller, an
//	                                                      cairn.append.       AppendTx or AppendAllTx (in the caller's
//	                                                      transaction         transaction, its commit not included);
//	                                                                          error.type counts failures by kind:
//	                                                                          version_conflict (the conflicts),
//	                                                                          stream_deleted, duplicate_event_id,
//	                                                                          invalid_argument, unavailable,
//	                                                                          outcome_unknown, canceled,
//	                                                                          deadline_exceeded, _OTHER
//	cairn.append.events           counter     {event}     db.system.name,     events stored by Append, or written by
//	                                                      cairn.append.       AppendTx/AppendAllTx (transaction=caller;
//	                                                      transaction         they commit with the caller's
//	                                                                          transaction); replays of stored events
//	                                                                          excluded
//	cairn.append.batch.events     histogram   {event}     db.system.name      events per group-commit transaction
//	cairn.append.batch.appends    histogram   {append}    db.system.name      appends per group-commit transaction
//	cairn.read.duration           histogram   s           db.system.name,     one query of a read (a page of events,
//	                                                      cairn.read.kind,    decoding included); kind: stream
//	                                                      error.type          (ReadEvent, ReadStream, SubscribeStream),
//	                                                      (failures)          all (ReadAll), batch (ReadBatch and the
//	                                                                          processors' subscriptions)
//	cairn.read.events             counter     {event}     db.system.name,     events fetched and decoded (a read
//	                                                      cairn.read.kind     fetches one past a full page)
//	cairn.processor.events        counter     {event}     P                   events a processor handled and committed (under Options.Concurrency: handled)
//	cairn.processor.failures      counter     {failure}   P,                  failed attempts, by what followed:
//	                                                      cairn.processor.    retry (the retries), park or stop
//	                                                      action
//	cairn.processor.position      gauge       {position}  P                   position of the last event handled
//	cairn.processor.head          gauge       {position}  P                   the store's head
//	cairn.processor.lag           gauge       {event}     P                   events from the position to the head
//	cairn.processor.lag.duration  gauge       s           P                   recorded time of the newest event minus
//	                                                                          that of the last one handled (0 once
//	                                                                          caught up)
//	cairn.processor.parked        gauge       {event}     P                   events parked
//	cairn.processor.state         gauge       {state}     P,                  1 for the processor's State, 0 for the
//	                                                      cairn.processor.    other States
//	                                                      state
//
// P stands for cairn.processor.name and cairn.processor.kind (projector,
// reactor, processor). The store measures the first six
// (eventstore.Options.MeterProvider), each processor its two counters
// (processing.Options.MeterProvider), and the runner the gauges, while
// [Runner.Run] runs (Options.MeterProvider): at each collection it reads
// a fresh [Runner.Status] and the recorded times of the head's event and
// of each lagging processor's position, a few indexed queries. Every
// runner process reports the processors it knows, those that another
// process owns with the state standby and the position it last saw.
package runner
