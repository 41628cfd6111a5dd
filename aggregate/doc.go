// Package aggregate is the write model of a Cairn application: aggregates
// that decide which events happen, and a [Repository] that rebuilds them from
// their streams and stores their new events.
//
// # Aggregates
//
// An aggregate is a struct that embeds [Root] by value and has one handler
// method per event type, named On followed by the event's Go type name. A
// handler takes the event by value and may return an error:
//
//	type Todo struct {
//		aggregate.Root
//		Title string
//		Done  bool
//	}
//
//	func (t *Todo) OnTodoAdded(e TodoAdded)          { t.Title = e.Title }
//	func (t *Todo) OnTodoCompleted(TodoCompleted)    { t.Done = true }
//
//	// Complete is a command method: it checks the rules, then applies.
//	func (t *Todo) Complete() error {
//		if t.Done {
//			return ErrAlreadyDone
//		}
//		return t.Apply(TodoCompleted{ID: t.ID()})
//	}
//
// [Root.Apply] calls the handler, bumps the version and records the event as
// a change; [Repository.Load] replays stored events through the same
// handlers. An event of type *E goes to the handler for E. Handler names
// come from Go type names, which is fine because they are never stored: the
// persisted event names are the ones given to the [event.Registry].
//
// Aggregates are created by [New] or [Repository.Load], which bind the
// embedded Root to its aggregate. A missing handler ([ErrMissingHandler]),
// a handler with the wrong signature ([ErrInvalidHandler]) or an aggregate
// that does not embed or bind its Root ([ErrNoRoot]) is an error naming the
// aggregate type, the event type and the method expected, never a panic.
// [Check] finds these problems up front, in a test or at start-up.
//
// # Dispatch cost
//
// The handler for an (aggregate type, event type) pair is found by
// reflection once and kept in a package-level cache of data derived from the
// Go types alone (as encoding/json caches struct fields). For an event type
// registered with an [event.Registry] — as every type a store can decode is —
// the handler is then called directly, at under twice the cost of a
// hand-written type switch. Event types never registered, as in a unit test
// that applies events without a registry, work the same but are called
// through reflect.Value.Call, some 20 times slower; even that is only a few
// percent of loading an event from the store and decoding it (see
// BenchmarkDispatch and BenchmarkLoad).
//
// # Repository
//
// A [Repository] keeps aggregate id of its type in the stream
// "<type name>-<id>" (see [Options.StreamID] to change that). Save appends
// the changes expecting the stream at the version the aggregate was loaded
// at, so of two concurrent saves of one aggregate exactly one succeeds and
// the other fails with [event.ErrVersionConflict]; the command package's
// Execute retries such a conflict by reloading and rerunning the command.
//
// Snapshots are opt-in ([Options.SnapshotEvery]): the aggregate's state is
// encoded with the registry's codec, tagged with
// [Options.SnapshotSchemaVersion], and a load starts from the latest snapshot
// of the current schema version and replays only the events after it.
package aggregate
