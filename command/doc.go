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
// with [Handle], through middleware:
//
//	d := command.NewDispatcher()
//	d.Use(command.Correlation(nil), command.Logging(logger), command.Validation())
//	command.Handle(d, func(ctx context.Context, c CompleteTodo) error {
//		_, err := command.Execute(ctx, todos, c.ID, (*Todo).Complete, command.ExecuteOptions{})
//		return err
//	})
//	err := d.Dispatch(ctx, CompleteTodo{ID: "42"})
//
// A command type with no handler is an error matching [ErrNoHandler]. With
// the [Validation] middleware, a command that has a Validate() error method
// and fails it is rejected with an error matching [ErrInvalid].
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
// and saves the events it applied. When another writer saved the aggregate
// in between, the save fails with [event.ErrVersionConflict]; Execute then
// backs off briefly and runs load, function and save again, a bounded number
// of times.
package command
