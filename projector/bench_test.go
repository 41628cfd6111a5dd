package projector_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// ledgerRow is a row of the benchmarks' projection: one per event.
type ledgerRow struct {
	position int64
	stream   string
	amount   int
}

// ledgerProjector projects every deposit and withdrawal into a row of the
// table. With batched, the handlers collect the rows and the Flush hook
// inserts them in multi-row statements; otherwise each handler inserts its
// row.
func ledgerProjector(b testing.TB, s projector.Store, name, table string, batched bool) *projector.Projector {
	b.Helper()
	return newLedger(b, s, name, table, ledgerOptions{batched: batched, errors: processing.NoRetry{}})
}

// ledgerOptions configures newLedger.
type ledgerOptions struct {
	batched bool
	// version, if positive, makes the projector versioned.
	version int
	// beginDelay makes the Begin hook of a batched projector wait, so
	// that batches of a versioned projector's follower and builder would
	// overlap if they could.
	beginDelay time.Duration
	errors     processing.ErrorHandler
}

// newLedger is the projector of ledgerProjector, with options.
func newLedger(b testing.TB, s projector.Store, name, table string, o ledgerOptions) *projector.Projector {
	b.Helper()
	var rows []ledgerRow
	opts := projector.Options{
		Processing: processing.Options{Logger: testdb.Logger(b), ErrorHandler: o.errors},
		Version:    o.version, DropAfter: -1, PollInterval: 100 * time.Millisecond,
		Tables: []string{table},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + projector.Table(ctx, table) + ` (position bigint PRIMARY KEY, stream text NOT NULL, amount bigint NOT NULL)`).Error
		},
	}
	insert := func(ctx context.Context) string {
		return `INSERT INTO ` + projector.Table(ctx, table) + ` (position, stream, amount) VALUES `
	}
	if o.batched {
		opts.Begin = func(context.Context, *gorm.DB) error {
			rows = rows[:0]
			time.Sleep(o.beginDelay)
			return nil
		}
		opts.Flush = func(ctx context.Context, tx *gorm.DB) error {
			for chunk := range slices.Chunk(rows, 300) {
				var sb strings.Builder
				sb.WriteString(insert(ctx))
				args := make([]any, 0, 3*len(chunk))
				for i, r := range chunk {
					if i > 0 {
						sb.WriteString(", ")
					}
					sb.WriteString("(?, ?, ?)")
					args = append(args, r.position, r.stream, r.amount)
				}
				if err := tx.Exec(sb.String(), args...).Error; err != nil {
					return err
				}
			}
			return nil
		}
	}
	p, err := projector.New(s, name, opts)
	if err != nil {
		b.Fatalf("projector.New() = %v", err)
	}
	add := func(ctx context.Context, tx *gorm.DB, e event.Event, amount int) error {
		if o.batched {
			rows = append(rows, ledgerRow{e.Position, e.StreamID, amount})
			return nil
		}
		return tx.Exec(insert(ctx)+"(?, ?, ?)", e.Position, e.StreamID, amount).Error
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited) error {
		return add(ctx, tx, e, d.Amount)
	})
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Withdrawn) error {
		return add(ctx, tx, e, -d.Amount)
	})
	if err := p.Migrate(b.Context()); err != nil {
		b.Fatalf("Migrate() = %v", err)
	}
	return p
}

// BenchmarkCatchUp projects a backlog of 100,000 events (a seventh of them
// of a type the projector skips) into a table of the same database, one
// row per event, and reports events/s.
func BenchmarkCatchUp(b *testing.B) {
	const n = 100_000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := testdb.New(b, kind)
			s := testkit.DomainStore(b, db.Gorm)
			head := testkit.Fill(b, s, n, 100, 1000)
			for _, mode := range []string{"insert-per-event", "multi-row-flush"} {
				b.Run(mode, func(b *testing.B) {
					table := "ledger_" + strings.ReplaceAll(mode, "-", "_")
					p := ledgerProjector(b, s, table, table, mode == "multi-row-flush")
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

// BenchmarkLiveLatency measures the time from Append returning to the
// projector having committed the event, over 1,000 appends one after
// the other, and reports the median and the 99th percentile.
func BenchmarkLiveLatency(b *testing.B) {
	const appends = 1000
	for _, kind := range testdb.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			db := testdb.New(b, kind)
			s := testkit.DomainStore(b, db.Gorm)
			p := ledgerProjector(b, s, "ledger", "ledger", false)
			ctx, cancel := context.WithCancel(b.Context())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Errorf("Run() = %v", err)
				}
			}()
			lat := make([]time.Duration, 0, appends*b.N)
			i := 0
			for b.Loop() {
				for range appends {
					i++
					evs, err := s.Append(b.Context(), fmt.Sprintf("acct-%d", i%10), event.Any, []any{testkit.Deposited{Amount: 1}})
					if err != nil {
						b.Fatalf("Append() = %v", err)
					}
					start := time.Now()
					if err := p.WaitFor(b.Context(), evs[0].Position); err != nil {
						b.Fatalf("WaitFor() = %v", err)
					}
					lat = append(lat, time.Since(start))
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
