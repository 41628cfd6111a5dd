package processing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/tracectx"
)

// tracerName is the instrumentation scope of the processors' spans.
const tracerName = "github.com/cairnhq/cairn/processing"

// The names of the processors' spans and attributes (see "Tracing" in the
// package documentation).
const (
	spanBatch = "cairn.process.batch"
	spanEvent = "cairn.process.event"

	attrProcessor = attribute.Key("cairn.processor")
	attrFrom      = attribute.Key("cairn.batch.from")
	attrThrough   = attribute.Key("cairn.batch.through")
	attrEvents    = attribute.Key("cairn.batch.events")
	attrAttempt   = attribute.Key("cairn.batch.attempt")
	attrSaved     = attribute.Key("cairn.batch.saved")
	attrPosition  = attribute.Key("cairn.event.position")
	attrStream    = tracectx.AttrStream
	attrType      = attribute.Key("cairn.event.type")
	attrID        = attribute.Key("cairn.event.id")
)

// maxBatchLinks caps the links of a batch span to the traces of its
// events (the SDK keeps 128 links by default).
const maxBatchLinks = 128

// processorTracer is a processor's tracer and the options of its spans,
// made once.
type processorTracer struct {
	t    trace.Tracer
	opts []trace.SpanStartOption
}

func newProcessorTracer(tp trace.TracerProvider) processorTracer {
	return processorTracer{t: tracectx.Tracer(tp, tracerName), opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}}
}

// startBatch starts the span of a batch, a new trace linked to the trace
// of each of its events that carries one in its metadata: a batch holds
// events of many traces, so it is the child of none of them.
func (r *run) startBatch(ctx context.Context, b event.Batch, cp Checkpoint) (context.Context, trace.Span) {
	p := r.p
	ctx, span := p.tr.t.Start(ctx, spanBatch, p.tr.opts...)
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(attrProcessor.String(p.name), attrKind.String(p.kind),
		attrFrom.Int64(cp.from), attrThrough.Int64(b.Through), attrEvents.Int(len(b.Events)), attrAttempt.Int(r.attempt+1))
	seen := make(map[trace.SpanID]struct{})
	for _, e := range b.Events {
		if len(seen) == maxBatchLinks {
			break
		}
		sc := tracectx.SpanContext(e.Metadata)
		if !sc.IsValid() {
			continue
		}
		if _, dup := seen[sc.SpanID()]; !dup {
			seen[sc.SpanID()] = struct{}{}
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return ctx, span
}

// endBatch ends a batch's span with its outcome.
func endBatch(span trace.Span, saved int64, err error) {
	if span.IsRecording() {
		span.SetAttributes(attrSaved.Int64(saved))
		if err != nil {
			tracectx.Fail(span, err)
		}
	}
	span.End()
}

// startEvent starts the span of the handling of e, within its batch's
// span in ctx. When e carries the trace context of the append that wrote
// it, the span is that context's child — so that the handling, and the
// events a reactor emits while handling it, belong to the trace of the
// command that wrote e — and it links to the batch's span; otherwise it
// is the batch span's child. It returns a nil span when there is nothing
// to trace: no trace context in e and a batch span that does not record.
func (p *Processor) startEvent(ctx context.Context, e event.Event) (context.Context, trace.Span) {
	batch := trace.SpanFromContext(ctx)
	parent, remote := tracectx.Extract(ctx, e.Metadata)
	if !remote && !batch.IsRecording() {
		return ctx, nil
	}
	opts := p.tr.opts
	if remote && batch.SpanContext().IsValid() {
		opts = []trace.SpanStartOption{opts[0], trace.WithLinks(trace.Link{SpanContext: batch.SpanContext()})}
	}
	ctx, span := p.tr.t.Start(parent, spanEvent, opts...)
	if span.IsRecording() {
		span.SetAttributes(attrProcessor.String(p.name), attrKind.String(p.kind),
			attrPosition.Int64(e.Position), attrStream.String(e.StreamID), attrType.String(e.Type), attrID.String(e.ID.String()))
	}
	return ctx, span
}

// endEvent ends the span of an event's handling, if there is one.
func endEvent(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		tracectx.Fail(span, err)
	}
	span.End()
}
