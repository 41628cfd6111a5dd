package command

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Validator is implemented by commands that can check themselves. The
// [Validation] middleware calls Validate before the command is handled.
type Validator interface {
	// Validate returns nil for a valid command, or an error saying what is
	// invalid (errors.Join several problems to report them all).
	Validate() error
}

// Validation returns middleware that rejects a command implementing
// [Validator] whose Validate method returns an error, without calling the
// handler. The returned error matches both [ErrInvalid] and the command's
// own error with errors.Is.
func Validation() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, cmd any) (Result, error) {
			if v, ok := cmd.(Validator); ok {
				if err := v.Validate(); err != nil {
					return Result{}, fmt.Errorf("%w %T: %w", ErrInvalid, cmd, err)
				}
			}
			return next.Handle(ctx, cmd)
		})
	}
}

// Correlation returns middleware that gives each command an ID and a
// correlation ID, carried in the context passed to the handler (see
// [WithID] and [WithCorrelationID]), so that the events it stores record
// the command as their causation and share its correlation ([AppendOptions],
// [Execute]).
//
// A command ID already in ctx is replaced by a new one from newID (nil
// means random UUIDs): each command dispatched is a message of its own. The
// correlation ID already in ctx is kept; without one, the command starts a
// conversation and its own ID becomes the correlation ID.
func Correlation(newID func() string) Middleware {
	if newID == nil {
		newID = func() string { return uuid.NewString() }
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, cmd any) (Result, error) {
			id := newID()
			ctx = WithID(ctx, id)
			if _, ok := CorrelationIDFromContext(ctx); !ok {
				ctx = WithCorrelationID(ctx, id)
			}
			return next.Handle(ctx, cmd)
		})
	}
}

// Logging returns middleware that logs every command handled, with its Go
// type, its command and correlation IDs when ctx carries them, how long it
// took, and the position of the last event it wrote or its error: at level
// Info when it succeeds and Error when it fails. It logs the error and returns it too, so callers of a logging
// dispatcher should not log it again. A nil logger means slog.Default().
// Put it after [Correlation] to log the IDs.
func Logging(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, cmd any) (Result, error) {
			l := logger
			if l == nil {
				l = slog.Default()
			}
			start := time.Now()
			res, err := next.Handle(ctx, cmd)
			attrs := make([]slog.Attr, 0, 6)
			attrs = append(attrs, slog.String("command", fmt.Sprintf("%T", cmd)))
			if id, ok := IDFromContext(ctx); ok {
				attrs = append(attrs, slog.String("command_id", id))
			}
			if id, ok := CorrelationIDFromContext(ctx); ok {
				attrs = append(attrs, slog.String("correlation_id", id))
			}
			attrs = append(attrs, slog.Duration("duration", time.Since(start)))
			if err != nil {
				attrs = append(attrs, slog.Any("error", err))
				l.LogAttrs(ctx, slog.LevelError, "command failed", attrs...)
			} else {
				if res.Position > 0 {
					attrs = append(attrs, slog.Int64("position", res.Position))
				}
				l.LogAttrs(ctx, slog.LevelInfo, "command handled", attrs...)
			}
			return res, err
		})
	}
}
