package projector_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// versionedLedger is ledgerProjector, versioned (version 1), named and
// tabled "ledger".
func versionedLedger(b testing.TB, s projector.Store, batched bool, beginDelay time.Duration) *projector.Projector {
	b.Helper()
	// Retry: other tests on the machine's PostgreSQL may end its
	// connections.
	return newLedger(b, s, "ledger", "ledger", ledgerOptions{batched: batched, version: 1, beginDelay: beginDelay,
		errors: processing.ExponentialBackoff{Max: time.Second}})
}

// BenchmarkRebuild rebuilds a projection of 100,000 events (P1's: a row
// per event, a seventh of the events of a type it skips) beside the
// active version, idle or while the application keeps serving: a client
// queries the view in a loop (the sum of one stream's amounts, an
// index-less scan of a tenth of the table) and another appends an event
// every 5ms, which the active version follows. It reports the rebuild's
// rate — events (positions) built per second, from Rebuild to the swap —
// and the queries answered per second meanwhile. Compare with
// BenchmarkCatchUp, the same projection caught up by a plain projector.
func BenchmarkRebuild(b *testing.B) {
	const n = 100_000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			for _, mode := range []string{"insert-per-event/idle", "insert-per-event/serving", "multi-row-flush/idle", "multi-row-flush/serving"} {
				b.Run(mode, func(b *testing.B) {
					db := testdb.New(b, kind)
					s := testkit.DomainStore(b, db.Gorm)
					testkit.Fill(b, s, n, 100, 1000)
					p := versionedLedger(b, s, strings.HasPrefix(mode, "multi-row-flush"), 0)
					serving := strings.HasSuffix(mode, "serving")
					testkit.RunInBackground(b, p)
					testkit.WaitFor(b, p, benchHead(b, s))

					ctx, cancel := context.WithCancel(b.Context())
					defer cancel()
					var queries atomic.Int64
					go func() {
						for serving && ctx.Err() == nil {
							var sum int64
							if err := db.Gorm.WithContext(ctx).Raw(`SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE stream = ?`, "acct-7").Scan(&sum).Error; err != nil {
								if ctx.Err() == nil {
									b.Errorf("query through the view: %v", err)
								}
								return
							}
							queries.Add(1)
						}
					}()
					go func() {
						for i := 0; serving && ctx.Err() == nil; i++ {
							if _, err := s.Append(ctx, fmt.Sprintf("acct-%d", i%100), event.Any, []any{testkit.Deposited{Amount: 1}}); err != nil && ctx.Err() == nil {
								b.Errorf("Append() = %v", err)
								return
							}
							time.Sleep(5 * time.Millisecond)
						}
					}()

					var built int64
					var took time.Duration
					label := "v1"
					for b.Loop() {
						start, q0 := time.Now(), queries.Load()
						if err := p.Rebuild(b.Context()); err != nil {
							b.Fatal(err)
						}
						vs, err := p.Versions(b.Context())
						if err != nil || vs.Build == nil {
							b.Fatalf("Versions() = %+v, %v; want a build", vs, err)
						}
						label = vs.Build.Label
						for vs.Build != nil {
							time.Sleep(5 * time.Millisecond)
							if vs, err = p.Versions(b.Context()); err != nil {
								b.Fatal(err)
							}
						}
						took += time.Since(start)
						built += rowPosition(b, s, "ledger")
						if serving {
							b.ReportMetric(float64(queries.Load()-q0)/time.Since(start).Seconds(), "queries/s")
						}
						if _, err := p.DropRetired(b.Context()); err != nil {
							b.Fatal(err)
						}
					}
					if vs, err := p.Versions(b.Context()); err != nil || vs.Active.Label != label {
						b.Fatalf("Versions() = %+v, %v; want %s active", vs, err, label)
					}
					b.ReportMetric(float64(built)/took.Seconds(), "events/s")
				})
			}
		})
	}
}

func benchHead(b testing.TB, s *eventstore.Store) int64 {
	b.Helper()
	h, err := s.Head(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// rowPosition returns the saved position of the processor name.
func rowPosition(b testing.TB, s *eventstore.Store, name string) int64 {
	b.Helper()
	_, pos, err := s.LeaseHolder(b.Context(), name)
	if err != nil {
		b.Fatal(err)
	}
	return pos
}
