// Package testkit is what Cairn's tests share: a small bank-account
// domain with its registry ([NewRegistry]), store helpers ([NewStore],
// [MustAppend], [MustCollect], …), checks of recorded events
// ([CheckEvents], [CheckOrder], [CheckStored], …), a live-subscription
// [Follower], a test logger ([Logger]) and the one helper that runs a test
// binary again as a child process for crash and multi-process tests
// ([StartChild]).
//
// The public conformance suite, package
// github.com/cairnhq/cairn/eventstore/storetest, is built on it, so two
// rules hold here:
//
//   - testkit imports no database driver and not internal/testdb: a user
//     of storetest on PostgreSQL must not get the cgo SQLite driver with
//     it. Helpers that need a database of a given kind belong in
//     internal/testdb; the ones here take a *gorm.DB.
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
