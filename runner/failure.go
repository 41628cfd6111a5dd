package runner

import (
	"context"
	"time"
)

// errorRecorder is implemented by stores that keep the error a processor
// stopped with where every process sharing the store can see it
// (*eventstore.Store). Processors record their own failures; the runner
// records the panics that escape a processor's run.
type errorRecorder interface {
	SetProcessorError(ctx context.Context, name, msg string) error
}

// recordTimeout bounds the recording of a processor's error.
const recordTimeout = 5 * time.Second

// recordFailure records err as the error the processor name stopped with,
// if the store keeps such errors, and logs a failure to do so.
func (r *Runner) recordFailure(ctx context.Context, name string, err error) {
	rec, ok := r.store.(errorRecorder)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if rerr := rec.SetProcessorError(ctx, name, err.Error()); rerr != nil {
		r.opts.Logger.WarnContext(ctx, "event processor error not recorded", "processor", name, "error", rerr)
	}
}
