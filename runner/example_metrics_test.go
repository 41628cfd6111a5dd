package runner_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/runner"
)

// One meter provider for the store, the projector and the runner: the
// runner reports the projector's lag in events and in seconds of recorded
// time while it runs. Here the OpenTelemetry SDK's manual reader reads
// them; a program gives the SDK an exporter (Prometheus, OTLP) instead.
func ExampleOptions_meterProvider() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)

	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	quiet := slog.New(slog.DiscardHandler)
	// Each commit is recorded a minute after the one before.
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Minute); return clock }
	store, err := eventstore.New(db, reg, eventstore.Options{Logger: quiet, Now: now, MeterProvider: provider})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	balances, err := projector.New(store, "balances", projector.Options{
		Processing: processing.Options{Logger: quiet, MeterProvider: provider},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS balances (id text PRIMARY KEY, balance bigint NOT NULL)`).Error
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	projector.MustOn(balances, func(ctx context.Context, tx *gorm.DB, e event.Event, d Deposited) error {
		return tx.Exec(`INSERT INTO balances (id, balance) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET balance = balances.balance + excluded.balance`, e.StreamID, d.Amount).Error
	})
	if err := balances.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	r, err := runner.New(store, runner.Options{Logger: quiet, MeterProvider: provider}, balances)
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	report := func(when string) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			log.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Gauge[int64]:
					if m.Name == "cairn.processor.lag" {
						fmt.Printf("%s: lag %d events", when, d.DataPoints[0].Value)
					}
				case metricdata.Gauge[float64]: // cairn.processor.lag.duration
					fmt.Printf(", %v s\n", d.DataPoints[0].Value)
				}
			}
		}
	}
	if _, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 5}}); err != nil {
		log.Fatal(err)
	}
	if err := balances.WaitFor(ctx, 1); err != nil {
		log.Fatal(err)
	}
	if err := r.Pause(ctx, "balances"); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		if _, err := store.Append(ctx, "acct-1", event.Any, []any{Deposited{Amount: 1}}); err != nil {
			log.Fatal(err)
		}
	}
	report("paused")
	if err := r.Resume(ctx, "balances"); err != nil {
		log.Fatal(err)
	}
	if err := balances.WaitFor(ctx, 3); err != nil {
		log.Fatal(err)
	}
	report("resumed")
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// paused: lag 2 events, 120 s
	// resumed: lag 0 events, 0 s
}
