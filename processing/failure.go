package processing

import (
	"context"
	"log/slog"
	"time"
)

// errorRecorder is implemented by stores that keep the error a processor
// stopped with where every process sharing the store can see it
// (*eventstore.Store): a [WaitForPositions] in another process then
// reports the processor at once instead of waiting out its timeout.
type errorRecorder interface {
	SetProcessorError(ctx context.Context, name, msg string) error
}

// recordTimeout bounds the recording of a processor's error.
const recordTimeout = 5 * time.Second

// recordError records msg as the error the processor stopped with, or
// clears it when msg is "", if the store keeps such errors. A failure to
// record is logged: what the processor does next does not depend on it.
func (p *Processor) recordError(ctx context.Context, log *slog.Logger, msg string) {
	rec, ok := p.store.(errorRecorder)
	if !ok || (msg == "" && ctx.Err() != nil) {
		return
	}
	// The run may be ending (its context with it); the record must still
	// be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := rec.SetProcessorError(ctx, p.name, msg); err != nil {
		log.WarnContext(ctx, "event processor error not recorded", "error", err)
	}
}
