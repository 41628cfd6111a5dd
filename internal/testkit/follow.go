package testkit

import (
	"context"
	"errors"
	"iter"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// Follower consumes a subscription in a goroutine of its own and keeps
// what it receives. Start one with [Follow]; end it with [Follower.Stop]
// or [Follower.Await].
type Follower struct {
	mu     sync.Mutex
	got    []event.Event
	cancel context.CancelFunc
	done   chan struct{}
	last   event.Event // what came with the final error
	err    error       // the error that ended the subscription
}

// Follow starts consuming s.Subscribe(ctx, after, types...) until ctx
// ends, the follower is stopped or the subscription yields an error.
func Follow(ctx context.Context, s *eventstore.Store, after int64, types ...string) *Follower {
	return FollowSeq(ctx, func(ctx context.Context) iter.Seq2[event.Event, error] {
		return s.Subscribe(ctx, after, types...)
	})
}

// FollowSeq is [Follow] of any subscription: it consumes subscribe(ctx)
// (s.SubscribeStream, say).
func FollowSeq(ctx context.Context, subscribe func(ctx context.Context) iter.Seq2[event.Event, error]) *Follower {
	ctx, cancel := context.WithCancel(ctx)
	f := &Follower{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for e, err := range subscribe(ctx) {
			f.mu.Lock()
			if err != nil {
				f.last, f.err = e, err
				f.mu.Unlock()
				return
			}
			f.got = append(f.got, e)
			f.mu.Unlock()
		}
	}()
	return f
}

// Done is closed when the subscription has ended.
func (f *Follower) Done() <-chan struct{} { return f.done }

// Progress returns how many events the follower has received and the
// position of the last.
func (f *Follower) Progress() (n int, last int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) > 0 {
		last = f.got[len(f.got)-1].Position
	}
	return len(f.got), last
}

// WaitFor waits until the follower has received want: as many events, or
// one at or past the position of want's last event (so that a
// subscription that skipped events does not keep the test waiting; the
// caller compares what it got). It reports false, and fails t, if the
// subscription ends first or nothing arrives for 30 seconds.
func (f *Follower) WaitFor(t testing.TB, want []event.Event) bool {
	t.Helper()
	const stall = 30 * time.Second
	if len(want) == 0 {
		return true
	}
	end := want[len(want)-1].Position
	last, lastChange := -1, time.Now()
	for {
		c, pos := f.Progress()
		if c >= len(want) || pos >= end {
			return true
		}
		if c != last {
			last, lastChange = c, time.Now()
		}
		if time.Since(lastChange) > stall {
			t.Errorf("Subscribe: stuck at %d events (position %d) for %v, want %d events up to position %d", c, pos, stall, len(want), end)
			return false
		}
		select {
		case <-f.done:
			if c, pos := f.Progress(); c < len(want) && pos < end {
				t.Errorf("Subscribe ended after %d events with %v, want %d events", c, f.err, len(want))
				return false
			}
			return true
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Await waits for want (see [Follower.WaitFor]), gives the follower a
// moment to show any extra (repeated) event, stops it and checks that the
// subscription ended with context.Canceled and a zero event. It returns
// what the follower received, for the caller to compare with want.
func (f *Follower) Await(t testing.TB, want []event.Event) []event.Event {
	t.Helper()
	f.WaitFor(t, want)
	time.Sleep(50 * time.Millisecond)
	got, err := f.Stop(t)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe ended with %v after %d events, want context.Canceled", err, len(got))
	}
	return got
}

// Stop cancels the subscription, waits for it to end and returns what it
// received and the error it ended with. It fails t if the subscription
// does not end within 30 seconds, or yields an event with its final
// error.
func (f *Follower) Stop(t testing.TB) ([]event.Event, error) {
	t.Helper()
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("Subscribe did not end within 30s of its context being cancelled")
	}
	if f.err != nil && !reflect.DeepEqual(f.last, event.Event{}) {
		t.Errorf("Subscribe yielded event %s with its final error %v, want the zero Event", Places([]event.Event{f.last}), f.err)
	}
	return slices.Clone(f.got), f.err
}
