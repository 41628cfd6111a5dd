package tracectx_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/internal/tracectx"
)

func remote(t testing.TB, state string) context.Context {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	if state != "" {
		ts, err := trace.ParseTraceState(state)
		if err != nil {
			t.Fatal(err)
		}
		sc = sc.WithTraceState(ts)
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), sc)
}

func TestInjectExtract(t *testing.T) {
	ctx := remote(t, "congo=t61rcWkgMzE")
	if !tracectx.Needs(ctx, nil) || !tracectx.Needs(ctx, map[string]string{"user": "ann"}) {
		t.Error("Needs = false for a valid span context and no traceparent, want true")
	}
	if tracectx.Needs(ctx, map[string]string{"traceparent": "given"}) || tracectx.Needs(context.Background(), nil) {
		t.Error("Needs = true with a traceparent given or no span context, want false")
	}
	meta := map[string]string{}
	tracectx.Inject(ctx, meta)
	want := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "congo=t61rcWkgMzE"}
	if len(meta) != 2 || meta["traceparent"] != want["traceparent"] || meta["tracestate"] != want["tracestate"] {
		t.Errorf("Inject wrote %v, want %v", meta, want)
	}
	got, ok := tracectx.Extract(context.Background(), meta)
	if sc := trace.SpanContextFromContext(got); !ok || !sc.Equal(trace.SpanContextFromContext(ctx)) {
		t.Errorf("Extract = %v, %v; want the injected span context", sc, ok)
	}
	for _, bad := range []map[string]string{nil, {"traceparent": "nonsense"}, {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}} {
		if got, ok := tracectx.Extract(ctx, bad); ok || got != ctx {
			t.Errorf("Extract(%v) = %v, want ctx unchanged and false", bad, ok)
		}
		if tracectx.SpanContext(bad).IsValid() {
			t.Errorf("SpanContext(%v) is valid", bad)
		}
	}
}

func TestStartChildOutsideATrace(t *testing.T) {
	tr := noop.NewTracerProvider().Tracer("test")
	ctx := remote(t, "") // valid, but not recording
	got, span := tracectx.StartChild(ctx, tr, "x")
	if got != ctx || span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("StartChild outside a recording span: want ctx unchanged and an empty span")
	}
	if n := testing.AllocsPerRun(100, func() { tracectx.StartChild(ctx, tr, "x") }); n != 0 {
		t.Errorf("StartChild outside a recording span allocates %v times, want 0", n)
	}
}

// BenchmarkUntracedAppendChecks is what an append does more with no
// recording span and no span context: StartChild, the span's IsRecording
// and Needs, on a context a few values deep like a request's.
func BenchmarkUntracedAppendChecks(b *testing.B) {
	type key int
	ctx := context.Background()
	for i := range key(4) {
		ctx = context.WithValue(ctx, i, i)
	}
	tr := noop.NewTracerProvider().Tracer("bench")
	b.ReportAllocs()
	for b.Loop() {
		c, span := tracectx.StartChild(ctx, tr, "cairn.append")
		if span.IsRecording() || tracectx.Needs(c, nil) {
			b.Fatal("traced")
		}
		span.End()
	}
}
