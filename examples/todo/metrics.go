package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metrics is the app's OpenTelemetry meter provider, read by a Prometheus
// exporter: the framework's metrics (appends, reads, the processors' lag
// and the rest; see package runner's documentation) served at /metrics in
// the Prometheus text format, on the web server and on the processors'
// status address. Nothing is pushed anywhere: Prometheus scrapes.
type metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// setupMetrics makes the app's meter provider and the /metrics handler
// that serves its measurements. Each call has its own Prometheus registry,
// so that several apps in one process (tests) do not mix their metrics.
func setupMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// meterProvider returns the provider the app's store, processors and
// runner measure with; nil (the global provider, a no-op unless set) when
// m is nil.
func (m *metrics) meterProvider() metric.MeterProvider {
	if m == nil {
		return nil
	}
	return m.provider
}

// serveWith returns h with /metrics added in front of it (h itself when m
// is nil).
func (m *metrics) serveWith(h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler)
	mux.Handle("/", h)
	return mux
}

// shutdown stops the meter provider.
func (m *metrics) shutdown(ctx context.Context) error {
	if m == nil {
		return nil
	}
	return m.provider.Shutdown(ctx)
}
