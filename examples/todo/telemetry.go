package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The values of the -trace flag: where the app sends its spans.
const (
	traceOff    = ""
	traceStdout = "stdout"
	traceOTLP   = "otlp"
)

// setupTracing returns the tracer provider that exports the app's spans as
// dest says: "stdout" writes them to stdout as JSON, "otlp" sends them to
// an OTLP/HTTP collector (configured by the standard OTEL_EXPORTER_OTLP_*
// variables; http://localhost:4318 by default), and "" exports nothing and
// returns a nil provider (and a shutdown that does nothing). mode, the
// binary's mode, names the service ("todo web", "todo processors").
// shutdown flushes the spans not yet exported; call it before exiting.
func setupTracing(ctx context.Context, dest, mode string, stdout io.Writer) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	var exp sdktrace.SpanExporter
	switch dest {
	case traceOff:
		return nil, func(context.Context) error { return nil }, nil
	case traceStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
	case traceOTLP:
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, nil, fmt.Errorf("-trace %q: want stdout, otlp or nothing", dest)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trace exporter %s: %w", dest, err)
	}
	service := "todo"
	if mode != "" {
		service += " " + mode
	}
	// The SDK's default resource (with OTEL_RESOURCE_ATTRIBUTES), named.
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return sdk, sdk.Shutdown, nil
}

// traceHTTP wraps h so that each request has a server span, from tp, child
// of the trace context of the request's W3C traceparent header when it has
// one. A nil tp leaves h as it is.
func traceHTTP(h http.Handler, tp trace.TracerProvider) http.Handler {
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, "todo",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern // "POST /todo/{id}" once the mux has routed it
			}
			return r.Method
		}))
}
