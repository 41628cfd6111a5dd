package reactor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// BenchmarkCatchUp has a reactor work through a backlog of 5,000 events
// (about 3,300 deposits, each answered by an emitted receipt), and
// reports events/s: a stateless reactor, which appends each receipt on its
// own through the store's group commit, and a stateful one, which keeps a
// balance per account in its table and appends a batch's receipts in the
// batch's transaction. Each iteration is a new reactor (a new name), so
// that its receipts are new events.
func BenchmarkCatchUp(b *testing.B) {
	const n = 5_000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := testdb.New(b, kind)
			s := testkit.DomainStore(b, db.Gorm)
			head := testkit.Fill(b, s, n, 100, 1000)
			for _, mode := range []string{"stateless", "stateful"} {
				b.Run(mode, func(b *testing.B) {
					catchUp(b, s, n, head, func(name string, opts processing.Options) *reactor.Reactor {
						if mode == "stateful" {
							return ledgerReactor(b, s, name, opts, nil)
						}
						return receiptReactor(b, s, name, opts, nil)
					})
				})
			}
		})
	}
}

// BenchmarkCatchUpConcurrent has a stateless reactor work through a
// backlog of 5,000 events in 100 streams (appended ten at a time, the
// streams in turn), each deposit answered by an emitted receipt, one event
// at a time and with Concurrency 32, and reports events/s: with
// concurrency, the receipts of 32 streams' handlers are appended at once
// and share the store's group commits.
func BenchmarkCatchUpConcurrent(b *testing.B) {
	const n = 5_000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := testdb.New(b, kind)
			s := testkit.DomainStore(b, db.Gorm)
			head := testkit.Fill(b, s, n, 100, 10)
			for _, c := range []int{1, 32} {
				b.Run(fmt.Sprintf("concurrency%d", c), func(b *testing.B) {
					catchUp(b, s, n, head, func(name string, opts processing.Options) *reactor.Reactor {
						opts.Concurrency = c
						return receiptReactor(b, s, name, opts, nil)
					})
				})
			}
		})
	}
}

// catchUp times, in each iteration, a new reactor made by newReactor
// (under a new name) from its start until it has passed head, and reports
// the n events up to there per second.
func catchUp(b *testing.B, s *eventstore.Store, n int, head int64, newReactor func(name string, opts processing.Options) *reactor.Reactor) {
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		name := fmt.Sprintf("bench_%d", time.Now().UnixNano())
		r := newReactor(name, processing.Options{Logger: testdb.Logger(b), ErrorHandler: processing.NoRetry{}})
		b.StartTimer()
		start := time.Now()
		stop := testkit.RunInBackground(b, r)
		testkit.WaitFor(b, r, head)
		total += time.Since(start)
		if err := stop(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
}
