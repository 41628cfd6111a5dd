// Package storetest is a conformance suite for Cairn's event store on your
// own database set-up: call [Run] from a test with a [Config] that opens
// your database the way your application does, and it checks every
// guarantee package eventstore documents, there.
//
// Cairn runs the same suite on SQLite and PostgreSQL for its own tests. Run
// it yourself when the set-up differs from a plain server: a managed
// PostgreSQL, a connection pooler in front of it, other session settings,
// another table prefix, another pool size.
//
// # What it checks
//
// Each part runs as a subtest named after the behaviour, and its subtests
// after outcomes:
//
//   - every expected version (any, no stream, stream exists, exact) on a
//     missing, an existing and a deleted stream, with conflicts that
//     name the stream and the expected and actual versions;
//   - bad input to every call is an error that writes nothing;
//   - stream IDs match byte for byte, and data and metadata (a MiB of
//     data, NUL) read back exactly as appended; strings of data or
//     metadata that are not valid UTF-8 are refused with
//     eventstore.ErrInvalidArgument, writing nothing, or read back byte
//     for byte;
//   - idempotent appends: the same event IDs at the same place are a
//     no-op, anywhere else an error, also when retried concurrently;
//   - atomic appends: a rejected append writes nothing, even in a batch it
//     shares with others or when cancelled while it commits; a 20,000-event
//     append is stored whole;
//   - stream versions are 1, 2, 3, … without holes under contention;
//   - one global order under eight concurrent writers, in goroutines on
//     two connection pools and in two child processes: live subscriptions
//     receive every acknowledged event once, in strictly increasing
//     positions, skipping none; and across processes, with writers in
//     four child processes and live subscriptions in two more
//     ([CheckProcessOrder], which you can also run with a reader of your own);
//   - reads of an event, a stream (both ways), the whole store and in
//     batches, with holes in the positions;
//   - subscriptions: catch-up then live, from any position, across
//     stores, with type filters, and how they end;
//   - deletion, snapshots, concurrent migration (in goroutines and
//     processes), upcasting and decode errors.
//
// # Running it
//
// In a _test.go file of yours:
//
//	func TestEventStore(t *testing.T) {
//		storetest.Run(t, storetest.Config{
//			NewDatabase: newSchema, // see the example
//			Open:        eventstore.OpenPostgres,
//		})
//	}
//
// and run it with the race detector:
//
//	go test -race -run TestEventStore ./...
//
// With Config.Parallel it takes about a minute, more under the race
// detector; -short makes it quicker and weaker.
//
// # The databases it needs
//
// Each part asks Config.NewDatabase for a database of its own and creates
// the store's tables there with Migrate; it writes nowhere else. A
// database is a PostgreSQL schema (CREATE SCHEMA, with a DSN whose
// search_path names it, dropped with DROP SCHEMA … CASCADE when the test
// ends, as the example does), a PostgreSQL database, or a SQLite file in
// t.TempDir(). NewDatabase removes it when the test ends (t.Cleanup); the
// suite closes its connections and waits for its child processes before
// that, so it leaves nothing behind. The role it connects as needs to
// create tables; creating the schemas is NewDatabase's business.
//
// Config.Open is called for the same DSN many times (several stores on
// their own pools stand for several processes) and in child processes: the
// suite runs the test binary again with -test.run selecting the calling
// test and an environment variable, and Run plays the child's part there.
// Code around the call to Run (and TestMain) therefore runs in the child
// too: keep it free of side effects, and call Run once per test.
//
// # Managed PostgreSQL and poolers
//
// Point the DSN at the endpoint, user and settings the application uses:
// the suite tests the whole path, not only the server. On a managed
// PostgreSQL, use a database where the test user may create schemas, and
// keep Config.Parallel off if the server allows few connections.
//
// Behind a connection pooler (PgBouncer, RDS Proxy, Supavisor, …), Open
// must connect through the pooler as the application does. Two things
// differ there:
//
//   - A pooler may refuse or ignore search_path as a connection
//     parameter. Then give each part a database of its own (CREATE
//     DATABASE through a direct connection, DROP DATABASE … WITH (FORCE)
//     when the test ends) that the pooler routes, or set the schema in a
//     way your pooler keeps.
//   - In transaction mode, pgx's default (cache_statement) keeps
//     server-side prepared statements, which need a pooler that keeps
//     track of them (PgBouncer 1.21 or later with max_prepared_statements
//     set). Otherwise set pgx's default_query_exec_mode in the DSN to
//     exec or simple_protocol, which prepare nothing on the server: the
//     store binds every parameter as a type pgx knows without asking the
//     server, so the suite passes in all five modes (cache_statement,
//     cache_describe, describe_exec, exec, simple_protocol), and Cairn's
//     own tests run it in exec and simple_protocol. LISTEN cannot work in
//     transaction mode, so live subscriptions find new events by polling
//     (eventstore.Options.PollInterval); the suite checks that nothing is
//     lost or reordered either way, not how soon events arrive.
//
// If a part fails on your set-up and passes on a plain server, the set-up
// breaks a guarantee your application relies on: the failure names the
// operation, the stream and what differed.
package storetest
