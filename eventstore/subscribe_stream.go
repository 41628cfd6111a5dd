package eventstore

import (
	"context"
	"iter"
	"strconv"
	"unicode/utf8"

	"github.com/cairnhq/cairn/event"
)

// SubscribeStream yields the events of one stream with a version after the
// given one (0: from its first event), in version order: first those
// stored already, then new ones as they are committed, until ctx ends. It
// then yields ctx's error with a zero Event and stops. A stream that does
// not exist yet is waited for.
//
// When the stream is deleted — before the subscription starts or while it
// follows the stream — the subscription yields an error matching
// [event.ErrStreamDeleted], after every event it read before the deletion,
// and stops. Any other read error also ends it, yielded the same way,
// except those matching [ErrUnavailable], after which it reads again from
// its last event for up to half a minute, as [Store.Subscribe] does.
//
// New events and deletions are noticed as [Store.Subscribe] notices new
// events: at once when they are written through this Store or, on
// PostgreSQL, through any store on the database (LISTEN/NOTIFY), and
// otherwise within Options.PollInterval. Versions in a stream have no
// holes and a version becomes visible only after the one before it, so
// every event is delivered exactly once and in order.
func (s *Store) SubscribeStream(ctx context.Context, streamID string, after int64) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		last := after
		fail := func(err error) {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = fail("subscribe to stream", streamID, " after version "+strconv.FormatInt(last, 10), err)
			}
			yield(event.Event{}, err)
		}
		if err := validStreamID(streamID); err != nil {
			fail(err)
			return
		}
		if after < 0 {
			fail(invalid("negative version %d", after))
			return
		}
		wake := s.newWaker()
		defer wake.stop()
		retry := reconnect{log: s.opts.Logger}
		for {
			// Take the wake-up channels before reading, so that a commit
			// or a deletion during the read is not missed.
			wake.arm()
			for {
				page, err := s.readPage(ctx, readOfStream, s.q.readForward, []any{streamID, last + 1, s.opts.PageSize})
				for _, e := range page {
					last = e.Version
					if !yield(e, nil) {
						return
					}
				}
				if err == nil && len(page) == 0 {
					// Caught up, or the stream is gone: its tombstone
					// says which.
					err = s.missing(ctx, streamID, nil)
				}
				if err != nil {
					err = translate(err)
					if retry.again(ctx, err) {
						continue
					}
					fail(err)
					return
				}
				retry.tries = 0
				if len(page) < s.opts.PageSize {
					break
				}
			}
			if err := wake.wait(ctx); err != nil {
				yield(event.Event{}, err)
				return
			}
		}
	}
}

// SubscribeBatchesOf is [Store.SubscribeBatches] limited to the streams f
// selects: one stream or a category of streams (see [event.StreamFilter]).
// The filter is applied by the database. As with types, each batch's
// Through covers the events of the other streams too, so a reader that
// resumes after it never reads them again, and a batch may hold no events
// when the read passed only events of other streams.
func (s *Store) SubscribeBatchesOf(ctx context.Context, f event.StreamFilter, after int64, limit int, types ...string) iter.Seq2[event.Batch, error] {
	if err := validFilter(f); err != nil {
		return func(yield func(event.Batch, error) bool) {
			yield(event.Batch{}, fail("subscribe to "+f.String()+" after "+strconv.FormatInt(after, 10), "", "", err))
		}
	}
	return s.subscribeBatches(ctx, f, after, limit, types)
}

// ReadBatchOf is [Store.ReadBatch] limited to the streams f selects (see
// [Store.SubscribeBatchesOf]).
func (s *Store) ReadBatchOf(ctx context.Context, f event.StreamFilter, after int64, limit int, types ...string) (event.Batch, error) {
	if err := validFilter(f); err != nil {
		return event.Batch{}, fail("read batch of "+f.String()+" after "+strconv.FormatInt(after, 10), "", "", err)
	}
	return s.readBatch(ctx, f, after, limit, types)
}

// validFilter checks a stream filter: at most one field set, each a valid
// stream ID (a prefix may be any non-empty beginning of one).
func validFilter(f event.StreamFilter) error {
	switch {
	case f.ID != "" && f.Prefix != "":
		return invalid("stream filter with both an ID (%q) and a prefix (%q)", f.ID, f.Prefix)
	case f.ID != "":
		return validStreamID(f.ID)
	case f.Prefix != "":
		return validStreamID(f.Prefix)
	}
	return nil
}

// readBatchOfSQL returns the query of ReadBatchOf with the types tf and
// the filter f: parameters are after, head, the types' (tf.appendArgs),
// the filter's (see appendFilterArgs), then the limit. With f selecting
// every stream, it is ReadBatch's.
//
// A prefix is matched with substr, which both databases count in
// characters, rather than LIKE (whose wildcards would need escaping, and
// which SQLite matches without regard to case) or a range (which
// PostgreSQL compares in the database's collation, not byte by byte).
func (q *queries) readBatchOfSQL(tf typeFilter, f event.StreamFilter) string {
	p := q.p
	s, n := q.typesAndStreams("SELECT "+eventColumns+" FROM "+q.t.events+" WHERE position > "+p(1)+" AND position <= "+p(2), 3, tf, f)
	return s + " ORDER BY position LIMIT " + p(n)
}

// typesAndStreams appends to the condition s the filters of the types tf
// and of f, whose parameters start at n, and returns it with the number of
// the next parameter. The parameters are tf.appendArgs's, then
// appendFilterArgs's.
func (q *queries) typesAndStreams(s string, n int, tf typeFilter, f event.StreamFilter) (string, int) {
	p := q.p
	cond, n := tf.condition(p, n)
	s += cond
	switch {
	case f.All():
	case f.ID != "":
		s += " AND stream_id = " + p(n)
		n++
	default:
		s += " AND substr(stream_id, 1, " + p(n) + ") = " + p(n+1)
		n += 2
	}
	return s, n
}

// appendFilterArgs appends the parameters of f to args, in the order of
// readBatchOfSQL.
func appendFilterArgs(args []any, f event.StreamFilter) []any {
	if f.ID != "" {
		return append(args, f.ID)
	}
	return append(args, utf8.RuneCountInString(f.Prefix), f.Prefix)
}
