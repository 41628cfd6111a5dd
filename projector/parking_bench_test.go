package projector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// BenchmarkCatchUpParking projects a backlog of 20,000 events of 20
// streams, appended 10 at a time (so every batch mixes the streams), into
// the accounts table (an upsert per event), and reports events/s: without
// parking, with parking and nothing parked, and with parking while one
// stream (a twentieth of the events) is parked, its events parked behind
// its first one batch after batch.
func BenchmarkCatchUpParking(b *testing.B) {
	const n = 20_000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := testdb.New(b, kind)
			s := testkit.DomainStore(b, db.Gorm)
			head := testkit.Fill(b, s, n, 20, 10)
			for _, mode := range []string{"park-off", "park-on", "park-on-1-of-20-streams-parked"} {
				b.Run(mode, func(b *testing.B) {
					o := testkit.AccountsOptions{Processing: processing.Options{Park: mode != "park-off", ErrorHandler: processing.NoRetry{}}}
					if mode == "park-on-1-of-20-streams-parked" {
						o.Fail = func(e event.Event) error {
							if e.StreamID == "acct-0" {
								return errors.New("poisoned")
							}
							return nil
						}
					}
					p := testkit.AccountsProjector(b, s, "bench", "bench", o)
					var total time.Duration
					for b.Loop() {
						b.StopTimer()
						if err := p.Reset(b.Context()); err != nil {
							b.Fatalf("Reset() = %v", err)
						}
						b.StartTimer()
						start := time.Now()
						ctx, cancel := context.WithCancel(b.Context())
						done := make(chan error, 1)
						go func() { done <- p.Run(ctx) }()
						if err := p.WaitFor(b.Context(), head); err != nil {
							b.Fatalf("WaitFor() = %v", err)
						}
						total += time.Since(start)
						cancel()
						if err := <-done; err != nil {
							b.Fatalf("Run() = %v", err)
						}
					}
					b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
				})
			}
		})
	}
}
