package eventstore_test

import (
	"context"
	"fmt"
	"log"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/event"
)

// An append made in a traced context records the trace context in the
// events' metadata as W3C "traceparent" (here the span context of an
// incoming request, as an HTTP server's propagator leaves it in ctx; with
// a tracer provider set, it would be the append span's). Processors read
// it back to continue the trace.
func ExampleStore_Append_traceContext() {
	store, closeDB := openExampleStore(context.Background())
	defer closeDB()

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	if _, err := store.Append(ctx, "todo-1", event.NoStream, []any{TodoAdded{Title: "traced"}}); err != nil {
		log.Fatal(err)
	}
	e, err := store.ReadEvent(context.Background(), "todo-1", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Metadata)
	// Output:
	// map[traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01]
}
