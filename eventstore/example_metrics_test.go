package eventstore_test

import (
	"context"
	"fmt"
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// A store measures its appends and reads with the meter provider of its
// options: here the OpenTelemetry SDK's, read on demand. A program would
// rather give it an exporter's reader (Prometheus, OTLP).
func ExampleOptions_meterProvider() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)

	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[TodoAdded](reg, "todo.added")
	store, err := eventstore.New(db, reg, eventstore.Options{MeterProvider: provider})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "Buy milk"}, TodoAdded{Title: "Buy oats"}})
	store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "Again"}}) // a version conflict

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					fmt.Println(m.Name, p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					kind, _ := p.Attributes.Value("error.type")
					fmt.Printf("%s count %d error.type=%q\n", m.Name, p.Count, kind.AsString())
				}
			}
		}
	}
	// Unordered output:
	// cairn.append.duration count 1 error.type=""
	// cairn.append.duration count 1 error.type="version_conflict"
	// cairn.append.events 2
}
