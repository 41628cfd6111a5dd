package command

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cairnhq/cairn/event"
)

// Repository loads and saves aggregates of type T.
// *aggregate.Repository[T] implements it.
type Repository[T any] interface {
	Load(ctx context.Context, id string) (*T, error)
	Save(ctx context.Context, agg *T, opts ...event.AppendOption) ([]event.Event, error)
}

// ExecuteOptions configures [Execute]. The zero value works.
type ExecuteOptions struct {
	// MaxAttempts is how many times Execute runs load, the function and
	// save before it gives up on version conflicts. Zero means 5.
	MaxAttempts int
	// Backoff is the wait before the second attempt; each later wait
	// doubles it, up to MaxBackoff. Every wait is jittered, a random
	// duration between half and all of its nominal value, so that
	// competing writers spread out. Zero means 5ms.
	Backoff time.Duration
	// MaxBackoff caps a wait. Zero means 200ms.
	MaxBackoff time.Duration
	// AppendOptions are passed to the save, after those taken from ctx
	// (see [AppendOptions]).
	AppendOptions []event.AppendOption
}

// Validate reports options that cannot work.
func (o ExecuteOptions) Validate() error {
	var errs []error
	if o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("command: MaxAttempts is %d, want 1 or more (0 means 5)", o.MaxAttempts))
	}
	if o.Backoff < 0 {
		errs = append(errs, fmt.Errorf("command: Backoff is %v, want 0 or more", o.Backoff))
	}
	if o.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("command: MaxBackoff is %v, want 0 or more", o.MaxBackoff))
	}
	return errors.Join(errs...)
}

func (o ExecuteOptions) withDefaults() ExecuteOptions {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff == 0 {
		o.Backoff = 5 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	return o
}

// Result is what a command wrote: the events it recorded and the global
// position of the last one, which a caller can wait for to read its own
// writes (a processor that has passed the position has seen them). The
// zero Result says the command wrote nothing.
type Result struct {
	// Events are the recorded events, in order; nil when the command
	// wrote none, or when its handler reports only the position.
	Events []event.Event
	// Position is the global position of the last event the command
	// wrote; 0 when it wrote none.
	Position int64
}

// resultOf returns the Result of a command that recorded events.
func resultOf(events []event.Event) Result {
	if len(events) == 0 {
		return Result{}
	}
	return Result{Events: events, Position: events[len(events)-1].Position}
}

// Execute runs a command against aggregate id: it loads the aggregate from
// repo, calls fn on it and saves the events fn applied, with the command
// and correlation IDs of ctx as causation and correlation ([AppendOptions]).
// It returns the recorded events and the position of the last one; when fn
// applied none, nothing is saved and the Result is zero.
//
// When the save fails with [event.ErrVersionConflict] — another writer
// changed the aggregate since it was loaded — Execute waits a short,
// jittered backoff and runs the whole load, fn, save again, up to
// opts.MaxAttempts times; fn must therefore have no effects outside the
// aggregate. An error from fn, or from the load or the save, is returned
// as it is (the repository's errors name the stream); the last conflict is
// returned wrapped with the number of attempts.
func Execute[T any](ctx context.Context, repo Repository[T], id string, fn func(agg *T) error, opts ExecuteOptions) (Result, error) {
	if err := opts.Validate(); err != nil {
		return Result{}, err
	}
	if repo == nil || fn == nil {
		return Result{}, errors.New("command: execute: nil repository or function")
	}
	opts = opts.withDefaults()
	appendOpts := append(AppendOptions(ctx), opts.AppendOptions...)
	wait := opts.Backoff
	for attempt := 1; ; attempt++ {
		agg, err := repo.Load(ctx, id)
		if err != nil {
			return Result{}, err
		}
		if err := fn(agg); err != nil {
			return Result{}, err
		}
		recs, err := repo.Save(ctx, agg, appendOpts...)
		if err == nil {
			return resultOf(recs), nil
		}
		if !errors.Is(err, event.ErrVersionConflict) {
			return Result{}, err
		}
		if attempt >= opts.MaxAttempts {
			return Result{}, fmt.Errorf("command: gave up after %d attempts: %w", attempt, err)
		}
		if err := sleep(ctx, jitter(wait)); err != nil {
			return Result{}, fmt.Errorf("command: waiting to retry after a version conflict: %w", err)
		}
		wait = min(2*wait, opts.MaxBackoff)
	}
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
