package reactor

import (
	"context"

	"github.com/cairnhq/cairn/internal/tracectx"
)

// traceMetadata returns the metadata that records ctx's trace context, or
// nil when ctx carries no valid span context. A stateful reactor's emitted
// events get it at Emit: they are appended later, in the batch's
// transaction, whose context is not the handler's, and so carry the trace
// of the handling of the event that caused them like the events of a plain
// reactor's Emit (whose trace context the store records at append time).
func traceMetadata(ctx context.Context) map[string]string {
	if !tracectx.Needs(ctx, nil) {
		return nil
	}
	meta := make(map[string]string, 2)
	tracectx.Inject(ctx, meta)
	return meta
}
