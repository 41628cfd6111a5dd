// Package tracectx carries OpenTelemetry trace context in event metadata, as
// the W3C Trace Context headers: the metadata keys [TraceParent] and
// [TraceState] hold the values the headers would, as plain strings, so that
// they are readable without OpenTelemetry.
//
// The event store writes them at append time ([Inject]), and processors
// read them back ([Extract]) to make the handling of an event part of the
// trace that wrote it.
package tracectx

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The metadata keys of the trace context, named as the W3C Trace Context
// headers.
const (
	TraceParent = "traceparent"
	TraceState  = "tracestate"
)

// AttrStream is the attribute of every Cairn span about one stream (an
// append, an aggregate's load or save, the handling of an event): the
// stream's ID, under one name in every package.
const AttrStream = attribute.Key("cairn.stream")

// w3c is the propagator of the metadata keys: the W3C Trace Context one,
// whatever the global propagator is, so that stored metadata always has the
// same keys. It has no state.
var w3c = propagation.TraceContext{}

// Needs reports whether an append with metadata meta, in ctx, should
// record ctx's trace context: ctx carries a valid span context and meta
// no trace parent of its own. It does not allocate.
func Needs(ctx context.Context, meta map[string]string) bool {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return false
	}
	_, ok := meta[TraceParent]
	return !ok
}

// Inject writes ctx's span context into meta, which must not be nil, under
// [TraceParent] (and [TraceState] when the trace state is not empty). It
// writes nothing when ctx carries no valid span context.
func Inject(ctx context.Context, meta map[string]string) {
	w3c.Inject(ctx, propagation.MapCarrier(meta))
}

// Extract returns ctx with the remote span context stored in meta as its
// current span context, and whether meta held a valid one. Without one, it
// returns ctx unchanged.
func Extract(ctx context.Context, meta map[string]string) (context.Context, bool) {
	sc := SpanContext(meta)
	if !sc.IsValid() {
		return ctx, false
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc), true
}

// SpanContext returns the remote span context stored in meta; it is
// invalid when meta holds none, or none that parses.
func SpanContext(meta map[string]string) trace.SpanContext {
	if _, ok := meta[TraceParent]; !ok {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.MapCarrier(meta)))
}

// Fail records err on span, and sets its status to Error with err's text,
// if span records.
func Fail(span trace.Span, err error) {
	if span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// Tracer returns the tracer called name (the instrumentation scope: the
// package's import path) of tp, or of the global tracer provider when tp is
// nil, as it is now: a provider set globally later is used too, since the
// global one delegates to it.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(name)
}

// StartChild starts a span called name with t when ctx's span records,
// and otherwise returns ctx and a span that does nothing, without
// allocating: the store and the repositories make spans only inside a
// recorded trace (a command's, a processor's), never traces of their own,
// so that with no tracer provider set, or outside traces, they cost
// nothing.
func StartChild(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return t.Start(ctx, name, opts...)
}
