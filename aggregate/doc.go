// Package aggregate is the write model of a Cairn application: aggregates
// that decide which events happen, and a [Repository] that rebuilds them from
// their streams and stores their new events.
//
// # Aggregates
//
// An aggregate is a struct that embeds [Root] by value and has one handler
// method per event type: a method on the pointer type whose name is On
// followed by an upper-case letter, which takes the event by value and may
// return an error. The handler for an event is chosen by its parameter's
// type, not by its name, so OnOrderCreated(orders.Created) and
// OnUserCreated(users.Created) are two handlers:
//
//	type Todo struct {
//		aggregate.Root
//		title string
//		done  bool
//	}
//
//	func (t *Todo) OnTodoAdded(e TodoAdded)       { t.title = e.Title }
//	func (t *Todo) OnTodoCompleted(TodoCompleted) { t.done = true }
//
//	// Complete is a command method: it checks the rules, then applies.
//	func (t *Todo) Complete() error {
//		if t.done {
//			return ErrAlreadyDone
//		}
//		return aggregate.Apply(t, TodoCompleted{})
//	}
//
// [Apply] calls the handler, bumps the version and records the event as a
// change; [Repository.Load] replays stored events through the same
// handlers. An event of type *E goes to the handler for E. Handler names are
// never stored: the persisted event names are the ones given to the
// [event.Registry].
//
// An aggregate may be made in any way: loaded by a Repository, made by
// [New] (which gives it an ID), or with new(Todo), &Todo{} or a copy of
// another. The type rules are checked by the compiler where they can be
// (Apply and New accept only a [Pointer] to a type that embeds Root), and
// otherwise when a [Repository] is built: a type that embeds *Root
// ([ErrNoRoot]); an On… method with the wrong signature, a second handler
// for one event type, or a handler of an event type the store's registry
// does not know ([ErrInvalidHandler]). [Check] runs the same checks in a
// test. An event with no handler ([ErrMissingHandler]) can only be found
// when it arrives: Apply refuses it before changing anything, and a load
// that meets one fails naming the stream, the version and the type.
//
// # Dispatch
//
// A Repository finds its aggregate type's handlers by reflection once, when
// it is built, and keeps them; an aggregate not loaded by a repository
// finds them on its first Apply. Nothing is cached at package level and no
// unsafe code is involved.
//
// By default each event is then a map lookup by its type and a
// reflect.Value.Call of the method: some 0.15–0.2 µs, against the 3 µs or
// so of reading the event from a database and decoding it, so a load runs
// at 0.9–0.95 of one through a hand-written type switch. A direct call
// needs the aggregate type and the event type together in statically typed
// code, which only the application has; an aggregate type that implements
// [Handlers] lists its On… methods as method expressions, and each event
// is then a type switch and a direct call, within some 20 ns of a
// hand-written type switch, which a load does not notice:
//
//	func (*Todo) Handlers() []aggregate.Handler[Todo] {
//		return []aggregate.Handler[Todo]{
//			aggregate.On((*Todo).OnTodoAdded),
//			aggregate.On((*Todo).OnTodoCompleted),
//		}
//	}
//
// The list is checked against the methods, so it cannot drift from them:
// a method left out or listed twice, or a function that is not the method,
// is an [ErrInvalidHandler] when the repository is built. See
// BenchmarkDispatch, BenchmarkLoad and A1/A1H in BENCHMARKS.md for the
// figures.
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
// # Snapshots
//
// Snapshots are opt-in, and need the aggregate's consent: a type that
// implements [Snapshotter] writes and reads its own state, and a repository
// with [Options.SnapshotEvery] set stores that state, tagged with
// [Options.SnapshotSchemaVersion], as the version passes each multiple of
// SnapshotEvery. A load then starts from the latest snapshot of the current
// schema version and replays only the events after it; with a store that
// keeps its own snapshots and implements [SnapshotStreamReader]
// (*eventstore.Store does), the snapshot and the events after it come in
// one query. NewRepository
// refuses snapshots for a type that is not a Snapshotter
// ([ErrNotSnapshotter]): the repository never copies an aggregate's fields
// on its own, so no state is silently left out of a snapshot.
//
// # Tracing
//
// A [Repository] makes OpenTelemetry spans with the tracer of
// [Options.TracerProvider] (nil: the global provider as [NewRepository]
// finds it), only inside a recorded trace, as the store does (the
// command's, with the command package's Tracing middleware):
// "cairn.aggregate.load" for [Repository.Load] and
// "cairn.aggregate.save" for [Repository.Save] (with changes to save), both
// with the attributes cairn.aggregate.type, cairn.aggregate.id, cairn.stream
// and cairn.aggregate.version (the version loaded or saved), and for a save
// cairn.aggregate.changes (the events saved). The store's append span is the
// save span's child. A failure records its error.
package aggregate
