package aggregate

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/tracectx"
)

// tracerName is the instrumentation scope of the repositories' spans.
const tracerName = "github.com/cairnhq/cairn/aggregate"

// The names of a repository's spans and attributes (see "Tracing" in the
// package documentation).
const (
	spanLoad = "cairn.aggregate.load"
	spanSave = "cairn.aggregate.save"

	attrType    = attribute.Key("cairn.aggregate.type")
	attrID      = attribute.Key("cairn.aggregate.id")
	attrStream  = tracectx.AttrStream
	attrVersion = attribute.Key("cairn.aggregate.version")
	attrChanges = attribute.Key("cairn.aggregate.changes")
)

// startSpan starts a load or save span of aggregate id.
func (r *Repository[T]) startSpan(ctx context.Context, name, id string) (context.Context, trace.Span) {
	ctx, span := tracectx.StartChild(ctx, r.tracer, name)
	if span.IsRecording() && id != "" {
		span.SetAttributes(attrType.String(r.typeName), attrID.String(id), attrStream.String(r.StreamID(id)))
	}
	return ctx, span
}

// endSpan ends a load or save span with the aggregate's version and the
// outcome.
func endSpan(span trace.Span, root *Root, err error, more ...attribute.KeyValue) {
	if span.IsRecording() {
		switch {
		case err != nil:
			tracectx.Fail(span, err)
		case root != nil:
			span.SetAttributes(attrVersion.Int64(root.version))
		}
		span.SetAttributes(more...)
	}
	span.End()
}
