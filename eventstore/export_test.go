package eventstore

import (
	"context"
	"iter"
	"time"

	"github.com/cairnhq/cairn/event"
)

// SubscribeIgnoringHorizon is the negative control of the ordering tests
// (test-only): a subscription that follows the events in position order,
// polling every 200µs, as Subscribe does under lock ordering, but without
// the horizon of OrderingXID. Under OrderingXID it skips the events of a
// transaction that commits after one with a greater ID has been read.
func (s *Store) SubscribeIgnoringHorizon(ctx context.Context, after int64) iter.Seq2[event.Event, error] {
	q := "SELECT " + eventColumns + " FROM " + s.q.t.events + " WHERE position > " + s.q.p(1) + " ORDER BY position LIMIT " + s.q.p(2)
	return func(yield func(event.Event, error) bool) {
		last := after
		for {
			page, err := s.readPage(ctx, readOfAll, q, []any{last, 1000})
			for _, e := range page {
				last = e.Position
				if !yield(e, nil) {
					return
				}
			}
			if err != nil {
				yield(event.Event{}, err)
				return
			}
			if len(page) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				yield(event.Event{}, ctx.Err())
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}
}

// TypedBatchSQL returns the statement ReadBatch sends for the given types
// under OrderingLock, and its parameters (test-only).
func (s *Store) TypedBatchSQL(after int64, limit int, types ...string) (string, []any) {
	tf := typesOf(types)
	args := tf.appendArgs([]any{after})
	return s.q.readBatchWithHeadSQL(tf, event.StreamFilter{}), append(args, limit)
}
