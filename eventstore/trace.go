package eventstore

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/tracectx"
)

// tracerName is the instrumentation scope of the store's spans.
const tracerName = "github.com/cairnhq/cairn/eventstore"

// The names of the store's spans and attributes (see "Tracing" in the
// package documentation).
const (
	spanAppend = "cairn.append"
	spanCommit = "cairn.append.commit"

	attrStream        = tracectx.AttrStream
	attrEvents        = attribute.Key("cairn.append.events")
	attrExpected      = attribute.Key("cairn.append.expected_version")
	attrAppends       = attribute.Key("cairn.append.appends")
	attrPosition      = attribute.Key("cairn.append.position")
	attrInTransaction = attribute.Key("cairn.append.in_transaction")
	attrBatchAppends  = attribute.Key("cairn.append.batch.appends")
	attrBatchEvents   = attribute.Key("cairn.append.batch.events")
	attrBatchLeader   = attribute.Key("cairn.append.batch.leader")
	attrQueued        = attribute.Key("cairn.append.queued")
	attrAttempts      = attribute.Key("cairn.append.commit.attempts")
)

// storeTracer is the store's tracer and the options of its spans, made once
// so that starting a span allocates nothing of ours.
type storeTracer struct {
	t          trace.Tracer
	appendOpts []trace.SpanStartOption
}

func newStoreTracer(tp trace.TracerProvider) storeTracer {
	return storeTracer{
		t:          tracectx.Tracer(tp, tracerName),
		appendOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)},
	}
}

// startAppend starts the span of an Append of n events to stream. With a
// no-op tracer it builds no attributes and reads no clock.
func (s *Store) startAppend(ctx context.Context, stream string, expected event.ExpectedVersion, n int) (context.Context, trace.Span) {
	ctx, span := tracectx.StartChild(ctx, s.tr.t, spanAppend, s.tr.appendOpts...)
	if span.IsRecording() {
		span.SetAttributes(attrStream.String(stream), attrEvents.Int(n), attrExpected.String(expected.String()))
	}
	return ctx, span
}

// traceAppendTx gives the span of an AppendAllTx its attributes, and links
// it to the trace context each append carried in its metadata already (a
// stateful reactor's emits carry that of the handling of the event that
// caused them), which is not the trace of the transaction.
func traceAppendTx(span trace.Span, reqs []*request) {
	if !span.IsRecording() {
		return
	}
	own := span.SpanContext()
	events := 0
	for _, r := range reqs {
		events += len(r.events)
		if sc := tracectx.SpanContext(r.meta); sc.IsValid() && sc.SpanID() != own.SpanID() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	if len(reqs) == 1 {
		span.SetAttributes(attrStream.String(reqs[0].stream), attrExpected.String(reqs[0].expected.String()))
	}
	span.SetAttributes(attrAppends.Int(len(reqs)), attrEvents.Int(events), attrInTransaction.Bool(true))
}

// endAppend ends an append's span with its outcome.
func endAppend(span trace.Span, recorded []event.Event, err error) {
	if err != nil {
		tracectx.Fail(span, err)
	} else if len(recorded) > 0 && span.IsRecording() {
		span.SetAttributes(attrPosition.Int64(recorded[len(recorded)-1].Position))
	}
	span.End()
}

// tracedAppend is the span of an append that records, and when the append
// was queued.
type tracedAppend struct {
	span     trace.Span
	queuedAt time.Time
}

// traceCommit gives the span of each live request of a group commit the
// batch's size and the time the request waited, and starts the span of
// the commit itself (a child of the leader's append span, linked from and
// to every append span of the batch). It returns ctx for the transaction
// and the function that ends the commit's span. When no request's span
// records, it does nothing.
func (s *Store) traceCommit(ctx context.Context, live []*request, leader *request) (context.Context, func(attempts int, err error)) {
	traced := 0
	events := 0
	for _, r := range live {
		events += len(r.events)
		if r.traced != nil {
			traced++
		}
	}
	if traced == 0 {
		return ctx, func(int, error) {}
	}
	links := make([]trace.Link, 0, traced)
	for _, r := range live {
		if r.traced != nil {
			links = append(links, trace.Link{SpanContext: r.traced.span.SpanContext()})
		}
	}
	ctx, commit := s.tr.t.Start(ctx, spanCommit, trace.WithLinks(links...))
	batch := []attribute.KeyValue{attrBatchAppends.Int(len(live)), attrBatchEvents.Int(events)}
	commit.SetAttributes(batch...)
	now := time.Now()
	for _, r := range live {
		if r.traced == nil {
			continue
		}
		sp := r.traced.span
		sp.SetAttributes(batch...)
		sp.SetAttributes(attrBatchLeader.Bool(r == leader), attrQueued.Float64(now.Sub(r.traced.queuedAt).Seconds()))
		sp.AddLink(trace.Link{SpanContext: commit.SpanContext()})
	}
	return ctx, func(attempts int, err error) {
		commit.SetAttributes(attrAttempts.Int(attempts))
		if err != nil {
			tracectx.Fail(commit, err)
		}
		commit.End()
	}
}
