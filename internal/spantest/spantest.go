// Package spantest records the spans of a test with the OpenTelemetry SDK,
// in memory, and finds them by name and attribute. Only tests import it.
package spantest

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Recorder is a tracer provider that samples every span and keeps the
// ended ones.
type Recorder struct {
	*sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

// New returns a Recorder that is shut down when t ends.
func New(t testing.TB) *Recorder {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return &Recorder{TracerProvider: tp, rec: rec}
}

// Ended returns the spans ended so far, in the order they ended.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// Named returns the ended spans called name.
func (r *Recorder) Named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of the span's attribute key, and whether it has
// one.
func Attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// Attrs returns the span's attributes as a map from key to the value's
// string form.
func Attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := make(map[string]string, len(s.Attributes()))
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// LinksTo reports whether s links to the span sc.
func LinksTo(s sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, l := range s.Links() {
		if l.SpanContext.TraceID() == sc.TraceID() && l.SpanContext.SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

// One returns the one ended span called name whose attributes (as [Attrs]
// gives them) match, and fails t unless there is exactly one.
func (r *Recorder) One(t testing.TB, name string, match func(attrs map[string]string) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range r.Named(name) {
		if match == nil || match(Attrs(s)) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		var all []string
		for _, s := range r.Ended() {
			all = append(all, fmt.Sprintf("%s %v", s.Name(), Attrs(s)))
		}
		t.Fatalf("%d matching %s spans, want 1; all spans:\n%s", len(found), name, strings.Join(all, "\n"))
	}
	return found[0]
}
