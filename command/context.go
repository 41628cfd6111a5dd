package command

import (
	"context"

	"github.com/cairnhq/cairn/event"
)

// ctxKey is the type of this package's context keys.
type ctxKey int

const (
	idKey ctxKey = iota
	correlationKey
)

// WithID returns a copy of ctx carrying id as the ID of the command being
// handled. Events stored through [AppendOptions] (and so by [Execute]) record
// it as their causation ID. The [Correlation] middleware sets it.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, idKey, id)
}

// IDFromContext returns the ID of the command being handled, and false
// when ctx carries none.
func IDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(idKey).(string)
	return id, ok && id != ""
}

// WithCorrelationID returns a copy of ctx carrying id as the correlation ID
// of the conversation the command belongs to: set it from an incoming
// request (a header, say) to tie the command's events to the request.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationIDFromContext returns the correlation ID carried by ctx, and
// false when it carries none.
func CorrelationIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(correlationKey).(string)
	return id, ok && id != ""
}

// AppendOptions returns the append options that record the command ID in
// ctx as the causation ID, and the correlation ID in ctx as the correlation
// ID, of the events being stored. [Execute] passes them to the repository's
// Save; pass them yourself when calling Save directly:
//
//	repo.Save(ctx, todo, command.AppendOptions(ctx)...)
//
// It returns nil when ctx carries neither.
func AppendOptions(ctx context.Context) []event.AppendOption {
	var opts []event.AppendOption
	if id, ok := IDFromContext(ctx); ok {
		opts = append(opts, event.WithCausationID(id))
	}
	if id, ok := CorrelationIDFromContext(ctx); ok {
		opts = append(opts, event.WithCorrelationID(id))
	}
	return opts
}
