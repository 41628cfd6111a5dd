package processing

import (
	"context"
	"log/slog"
	"time"

	"github.com/cairnhq/cairn/event"
)

// EventFunc handles one event: a processor's handler for the event's
// type, inside the middleware that follows the one it is passed to.
type EventFunc func(ctx context.Context, e event.Event) error

// Middleware wraps a processor's handling of each event, as command
// middleware wraps the handling of a command: it returns an EventFunc that
// runs code around next — logging, metrics, tracing, a timeout, a check
// of the event — for the processor p, whose Name and Kind say which
// processor handles the event. It calls next to handle the event (or does
// not, to skip it: the event then counts as handled); an error it returns
// fails the event as the handler's error would, passed to the error
// handler with the event named.
//
// Middleware is set in [Options.Middleware]; the first one is outermost:
// it sees the event first and the result last. It runs where the
// processor's kind runs the handler — for a projector, inside the batch's
// transaction; for a reactor, around the handler and the events it emits —
// for every event the processor reads (the types it has handlers for, in
// its streams). A panic in middleware is recovered like a handler's. A
// processor runs its middleware on one goroutine, one event at a time —
// unless its [Options.Concurrency] is above 1: then on the goroutines of
// the streams it handles at the same time, and middleware must be safe
// for concurrent use.
type Middleware func(p *Processor, next EventFunc) EventFunc

// wrapper is implemented by handlers that call middleware.
type wrapper interface{ wraps() }

func (kindHandler[A]) wraps() {}

// handleWrapped is Handle with middleware around h.
func (t *Handlers[A]) handleWrapped(ctx context.Context, a A, e event.Event, h func(ctx context.Context, a A, e event.Event) error) error {
	next := func(ctx context.Context, e event.Event) error { return h(ctx, a, e) }
	for i := len(t.mw) - 1; i >= 0; i-- {
		next = t.mw[i](t.p, next)
	}
	if err := Guard(func() error { return next(ctx, e) }); err != nil {
		return NewEventError(e, err)
	}
	return nil
}

// Logging returns middleware that logs every event a processor handles,
// at level Debug: the processor's name and kind, the event's position,
// stream and type, how long it took, and its error if it failed. The
// processor logs its failures itself (with the attempt and the retry), so
// this is a trace of the work, for debugging. A nil logger means
// slog.Default().
func Logging(logger *slog.Logger) Middleware {
	return func(p *Processor, next EventFunc) EventFunc {
		return func(ctx context.Context, e event.Event) error {
			l := logger
			if l == nil {
				l = slog.Default()
			}
			if !l.Enabled(ctx, slog.LevelDebug) {
				return next(ctx, e)
			}
			start := time.Now()
			err := next(ctx, e)
			attrs := []slog.Attr{
				slog.String("processor", p.Name()), slog.String("kind", p.Kind()),
				slog.Int64("position", e.Position), slog.String("stream", e.StreamID), slog.String("type", e.Type),
				slog.Duration("duration", time.Since(start)),
			}
			if err != nil {
				attrs = append(attrs, slog.Any("error", err))
				l.LogAttrs(ctx, slog.LevelDebug, "event failed", attrs...)
			} else {
				l.LogAttrs(ctx, slog.LevelDebug, "event handled", attrs...)
			}
			return err
		}
	}
}

// Timeout returns middleware that gives the handling of each event at most
// d: the handler's context ends after d, and a handler that honours it
// fails with context.DeadlineExceeded, passed to the error handler like
// any failure. A d of zero or less sets no timeout.
func Timeout(d time.Duration) Middleware {
	return func(_ *Processor, next EventFunc) EventFunc {
		if d <= 0 {
			return next
		}
		return func(ctx context.Context, e event.Event) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, e)
		}
	}
}
