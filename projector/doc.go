// Package projector builds read models from events: a [Projector] is an
// event stream processor (see package processing) whose handlers write
// tables in the store's database, in the same transaction as its position.
//
// Handlers are registered per event type with [On] (or [MustOn], which
// panics where On returns an error, for set-up code), typed by the event's
// Go type, and receive the batch's transaction:
//
//	p, err := projector.New(store, "todo-list", projector.Options{
//		Tables: []string{"todo_list"},
//		Setup: func(ctx context.Context, tx *gorm.DB) error {
//			return tx.Exec(`CREATE TABLE IF NOT EXISTS todo_list (id text PRIMARY KEY, title text, done boolean)`).Error
//		},
//	})
//	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d TodoAdded) error {
//		return tx.Exec(`INSERT INTO todo_list (id, title, done) VALUES (?, ?, false)`, e.StreamID, d.Title).Error
//	})
//	err = p.Migrate(ctx) // position table + Setup
//	err = p.Run(ctx)     // until ctx ends
//
// # Exactly once
//
// A projector reads its events in batches (1,000 by default) and handles
// each batch in one transaction that also saves its position, so the
// projection and the position always agree: after any failure or crash, the
// projector resumes right after the last committed batch, and no event is
// lost or projected twice. This holds for tables in the store's database;
// a handler that writes anywhere else is a reactor's job. [Projector.Reset]
// empties the projection's tables and its position in one transaction, to
// rebuild it from the first event.
//
// When a handler fails, the batch rolls back; the events before the
// failing one are committed again without it, and the processor's error
// handler decides whether to retry the failing event. Events of other types
// than those with a handler are not read at all, but the position moves
// past them.
//
// # Parking
//
// With processing.Options.Park, a projector parks an event its error
// handler gives up on instead of stopping (see package processing): the
// events before it commit, and then the record of the parked event
// commits with the position that passes it. The stream's later events
// are parked behind it, recorded in the transaction of the batch that
// passes them; the other streams are projected as usual. Until a retry,
// the stream's rows lack its parked events (and, in tables that sum
// across streams, so do the totals). [Projector.RetryParked] applies a
// stream's parked events in order, in one transaction with their removal
// from the parked events and with the Begin and Flush hooks, so the
// projection gets them exactly once however the retry ends; afterwards it
// equals a rebuild from scratch.
//
// # Fast catch-up
//
// A statement per event costs a round trip per event: catching up on
// 100,000 events with an INSERT per event ran at about 12,000–18,000
// events/s on a local PostgreSQL and 90,000–115,000 on SQLite (2 cores). A
// projection that must catch up faster collects its rows in its handlers
// and writes them with one multi-row statement per batch in the
// [Options.Flush] hook (resetting its buffer in [Options.Begin]), which
// reached about 80,000 events/s on PostgreSQL and 200,000 on SQLite. See
// BenchmarkCatchUp. Live, a projector commits an event well under a
// millisecond after its Append returns (median; BenchmarkLiveLatency).
//
// # Versions and rebuilds without downtime
//
// Changing a projection's tables or handlers used to mean [Projector.Reset]:
// the tables emptied and replayed while the application reads half-built
// lists. A versioned projector (Options.Version > 0) builds each version
// in tables of its own and swaps the new one in only once it has caught
// up, while the old one serves:
//
//	p, err := projector.New(store, "todo-list", projector.Options{
//		Version: 2, // raise it when the tables or handlers change
//		Tables:  []string{"todo_list"},
//		Setup: func(ctx context.Context, tx *gorm.DB) error {
//			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + projector.Table(ctx, "todo_list") + ` (…)`).Error
//		},
//	})
//	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d TodoAdded) error {
//		return tx.Exec(`INSERT INTO `+projector.Table(ctx, "todo_list")+` …`, …).Error
//	})
//	// queries, anywhere: SELECT … FROM todo_list
//
// Physical tables and a stable name. Each version's tables are named
// after it — [Table](ctx, "todo_list") is todo_list_v2 in the Setup, hooks
// and handlers of version 2, todo_list_v2r1 in those of its first rebuild
// — and the queries read a view named like the table, todo_list, which
// selects everything from the active version's table. We chose views over
// a table of active versions that a query helper would resolve because the
// queries stay plain SQL or plain gorm (db.Table("todo_list"), Raw, Scan)
// with nothing to look up, and because a view is replaced atomically: DDL
// is transactional on both SQLite and PostgreSQL, so the views change in
// the transaction that commits the swap, and no query can see a name
// resolved before the swap and tables dropped after it. Both databases
// read through a simple view as through its table, indexes included.
// What we checked: on PostgreSQL a query that arrives while the swap
// replaces a view waits for its commit (a moment: the swap holds the
// view's lock only at its very end) and then reads the new version — the
// server looks the name up again after the wait; prepared statements are
// re-planned, and a statement that selects * from a view whose columns
// changed fails once per connection with "cached plan must not change
// result type" (pgx then prepares it again), so queries name their
// columns, as the todo app's do. On SQLite a query reads a snapshot, the
// old version's or the new one's, and prepared statements are prepared
// again after the schema change. Two caveats follow from views: gorm's
// AutoMigrate must never target the stable name (migrate
// db.Table(projector.Table(ctx, "todo_list")) in Setup instead), and on
// PostgreSQL a simple view is writable, so nothing but the projector's
// handlers (through Table) may write a projection.
//
// Build beside, then swap. The state of the versions lives in the store
// (eventstore's projection versions table): one row per version —
// active, building or retired — with its tables. [Projector.Migrate]
// makes the code's version active at once when the projector has none; a
// projector that was not versioned hands its tables over as version 0,
// renamed, and they serve until the code's version is built. When another
// version is active, Migrate records the code's version as building, and
// [Projector.Rebuild] does the same for a new copy of the active version.
// A running projector then runs two processors, each under its own lease
// and position: the follower, named like the projector, which keeps the
// active version up to date (while the code declares that version), and
// the builder, named projector@label (todo-list@v2), which builds the new
// version from the first event. Once the builder is within a batch of the
// head, its next batch's transaction swaps: it fences the follower
// (bumping its epoch, so no batch of it can commit after the swap) and
// reads its position P, handles the events up to P that the build has
// not, moves the follower's position to the build's, retires the old
// version, makes the new one active and replaces the views. From that
// commit every query sees the new version, complete; the follower goes on
// from there with the new tables. A swap therefore never happens while the
// new version is behind, and happens once: the builder's position update
// is a compare-and-set on its epoch, and the swap checks under a lock
// that the version is still being built. In one process the follower's
// and the builder's batches run one at a time, so Begin, Flush and the
// handlers may keep per-batch state in their closures, as an unversioned
// projector's do.
//
// Versions and deployments. A process whose code declares an older version
// than the active one (the previous deployment, still running) stands by:
// its follower stops at its next batch, Migrate changes nothing and
// Rebuild fails with [ErrOutdated]. During a version bump, the old version
// keeps following new events as long as a process of the old code runs
// its follower; once none does, it serves its last state until the swap.
// Queries written for the new version's columns must wait for the swap
// (see [Projector.Versions]) or read only columns both versions have. A
// rebuild of the current version keeps following throughout.
//
// Dropping. The tables of a retired version are dropped by the running
// projector once Options.DropAfter has passed since the swap
// ([DefaultDropAfter]: ten minutes, for the queries that began before the
// swap and for an operator to compare the versions); with a negative
// DropAfter they stay until [Projector.DropRetired], the explicit command.
//
// No side effects. Only projectors have versions: a rebuild runs the
// projector's handlers into the new version's tables and nothing else.
// Reactors are never rebuilt, never see replayed events, and their
// positions are never touched.
//
// Progress and failures. [Projector.Building] reports this process's
// build (its builder's state and position), and the runner shows it in its
// status with the head, the rate and the estimated time to the swap, and
// logs it every ProgressInterval; [Projector.Versions] reads the same from
// the database, in any process. A builder killed mid-build resumes from
// its last committed batch in whichever process takes its lease next; a
// process killed inside the swap's transaction leaves nothing of it, and
// the build swaps later. A builder whose error handler gives up stops, is
// reported failed, and resumes when its process restarts or Rebuild is
// called again; the active version serves and follows meanwhile.
package projector
