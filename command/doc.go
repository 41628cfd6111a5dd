// Package command handles commands: it routes a command value to its
// handler, and runs the handler's load–decide–save cycle against an
// aggregate with retries on a concurrency conflict.
//
// A command is any value — a plain struct, with no base type to embed:
//
//	type CompleteTodo struct{ ID string }
//
// # Dispatcher
//
// A [Dispatcher] routes a command to the handler registered for its Go type
// with [Handle], through middleware. Its zero value is ready to use:
//
//	var d command.Dispatcher
//	d.Use(command.Correlation(nil), command.Logging(logger), command.Validation())
//	command.MustHandle(&d, func(ctx context.Context, c CompleteTodo) (command.Result, error) {
//		return command.Execute(ctx, todos, c.ID, (*Todo).Complete, command.ExecuteOptions{})
//	})
//	res, err := d.Dispatch(ctx, CompleteTodo{ID: "42"})
//
// A handler returns what the command wrote, a [Result]: the recorded
// events and the global position of the last one. Dispatch hands it back
// through the middleware, so the caller can wait for processors to pass
// res.Position before it reads a projection (read-your-writes).
//
// A command type with no handler is an error matching [ErrNoHandler]. With
// the [Validation] middleware, a command that has a Validate() error method
// and fails it is rejected with an error matching [ErrInvalid].
//
// Registration follows one rule across Cairn (event.Register,
// projector.On, reactor.On): the function returns an error for bad input —
// a nil function, an interface type, a second handler for a type — and its
// Must form ([MustHandle]) panics with that error, for start-up code where
// such a mistake is a bug.
//
// # Causation and correlation
//
// The [Correlation] middleware gives each command an ID and a correlation
// ID, carried in the handler's context (see [IDFromContext] and
// [CorrelationIDFromContext]; [WithCorrelationID] sets the correlation of an
// incoming request). [Execute] stores the command's events with the command
// ID as their causation ID and with its correlation ID, through
// [AppendOptions], so every event can be traced to the command that caused
// it and the conversation it belongs to.
//
// # Execute
//
// [Execute] loads an aggregate from a [Repository], runs a function on it
// and saves the events it applied, and returns them with the position of
// the last one. When another writer saved the aggregate in between, the
// save fails with [event.ErrVersionConflict]; Execute then backs off
// briefly and runs load, function and save again, a bounded number of
// times.
//
// # Errors
//
// Each layer of an error says what it alone knows, once: a conflict that
// outlasted the retries reads
//
//	command: gave up after 5 attempts: aggregate: save: <the store's error>
//
// where the store's error names the stream and the versions. The error of
// the command's own function (a rule of the aggregate) is returned as it
// is, so a caller can match it with errors.Is or errors.As directly.
//
// # Tracing
//
// The [Tracing] middleware gives each command an OpenTelemetry span,
// "cairn.command", the parent of everything its handler does: the
// aggregate's load and save, the store's append, and so the trace context
// that the appended events carry to the processors that handle them.
// Attributes: cairn.command.type (the Go type), cairn.command.id and
// cairn.command.correlation_id (with [Correlation] before Tracing),
// cairn.command.events and cairn.command.position (what it wrote); a
// failed command records its error. Put it after [Correlation] and before
// [Logging]:
//
//	d.Use(command.Correlation(nil), command.Tracing(nil), command.Logging(nil), command.Validation())
package command
