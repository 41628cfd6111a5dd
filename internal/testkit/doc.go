// Package testkit is what Cairn's tests share: a small bank-account
// domain with its registry ([NewRegistry]), store helpers ([NewStore],
// [DomainStore], [MustAppend], [MustCollect], …), checks of recorded
// events ([CheckEvents], [CheckOrder], [CheckStored], …), a
// live-subscription [Follower], a test logger ([Logger]), the fixtures of
// the processor tests (a filler that writes a known mix of events,
// [Fill]; the accounts projector, a projection in which a lost or doubled
// event shows, [AccountsProjector], with [FoldAccounts] and
// [CheckAccounts]; [RunInBackground], [WaitFor], [Eventually]) and the one
// helper that runs a child process for crash and multi-process tests
// ([StartChild]): the test binary again, or a program the test built;
// [KillRepeatedly] and [CrashChild] are the two sides of a processor
// crash test built on it.
//
// The public conformance suite, package
// github.com/cairnhq/cairn/eventstore/storetest, is built on it, so two
// rules hold here:
//
//   - testkit imports no database driver and not internal/testdb: a user
//     of storetest on PostgreSQL must not get the cgo SQLite driver with
//     it. Helpers that need a database of a given kind belong in
//     internal/testdb; the ones here take a *gorm.DB, or an opener
//     ([CrashChild] takes testdb.Open). Besides eventstore it imports
//     processing and projector (for [AccountsProjector]), which add no
//     third-party dependency.
//   - The persisted type names of the domain ([TypeOpened], …) and the
//     shape of its events are part of what the suite writes: change them
//     only together with the suite's expectations (go test
//     ./eventstore/... shows what breaks).
//
// Helpers take a testing.TB, call t.Helper and fail the test with
// messages of the form "Call(args) = got, want want". The ones that
// fail t with Fatal must run on the test's goroutine; in other goroutines
// use the non-fatal forms ([Collect], a plain Append) and t.Error.
//
// testkit imports eventstore, so tests inside package eventstore (rather
// than eventstore_test) cannot use it.
package testkit
