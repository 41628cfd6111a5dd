package command

import (
	"context"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/tracectx"
)

// tracerName is the instrumentation scope of the command spans.
const tracerName = "github.com/cairnhq/cairn/command"

// The names of the command span and its attributes (see "Tracing" in the
// package documentation).
const (
	spanCommand = "cairn.command"

	attrType          = attribute.Key("cairn.command.type")
	attrID            = attribute.Key("cairn.command.id")
	attrCorrelationID = attribute.Key("cairn.command.correlation_id")
	attrEvents        = attribute.Key("cairn.command.events")
	attrPosition      = attribute.Key("cairn.command.position")
)

// Tracing returns middleware that gives the handling of each command an
// OpenTelemetry span, "cairn.command", from the tracer provider tp (nil
// means otel.GetTracerProvider() as Tracing finds it). The span is the
// parent of what the handler does — the aggregate's load and save, the
// append — and so of the trace context the appended events carry. It has
// the command's Go type, its command and correlation IDs when ctx carries
// them (put Tracing after [Correlation]), and the number of events the
// command wrote and the position of the last one, or its error.
func Tracing(tp trace.TracerProvider) Middleware {
	tracer := tracectx.Tracer(tp, tracerName)
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, cmd any) (Result, error) {
			ctx, span := tracer.Start(ctx, spanCommand)
			defer span.End()
			recording := span.IsRecording()
			if recording {
				span.SetAttributes(attrType.String(reflect.TypeOf(cmd).String()))
				if id, ok := IDFromContext(ctx); ok {
					span.SetAttributes(attrID.String(id))
				}
				if id, ok := CorrelationIDFromContext(ctx); ok {
					span.SetAttributes(attrCorrelationID.String(id))
				}
			}
			res, err := next.Handle(ctx, cmd)
			if recording {
				if err != nil {
					tracectx.Fail(span, err)
				} else {
					span.SetAttributes(attrEvents.Int(len(res.Events)), attrPosition.Int64(res.Position))
				}
			}
			return res, err
		})
	}
}
