package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// A stream subscription sees exactly its stream's events, in order, the
// stored ones and then live ones, while 8 writers append to other streams
// (through another store: another process), and ends with an error
// matching event.ErrStreamDeleted when the stream is deleted.
func TestSubscribeStream(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		// Small pages, so that the catch-up takes several.
		db, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond, PageSize: 7})
		other := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		ctx := t.Context()

		stored := testkit.MustAppend(t, s, "watched", event.NoStream, []any{
			testkit.Noted{Text: "1"}, testkit.Noted{Text: "2"}, testkit.Noted{Text: "3"}, testkit.Noted{Text: "4"}})
		for i := range 20 {
			testkit.MustAppend(t, s, fmt.Sprint("before-", i%3), event.Any, []any{testkit.Deposited{Amount: i}})
		}
		stored = append(stored, testkit.MustAppend(t, s, "watched", event.Exact(4), []any{
			testkit.Noted{Text: "5"}, testkit.Noted{Text: "6"}, testkit.Noted{Text: "7"}, testkit.Noted{Text: "8"},
			testkit.Noted{Text: "9"}, testkit.Noted{Text: "10"}, testkit.Noted{Text: "11"}, testkit.Noted{Text: "12"}})...)
		f := testkit.FollowSeq(ctx, func(ctx context.Context) iter.Seq2[event.Event, error] {
			return s.SubscribeStream(ctx, "watched", 2)
		})
		want := slices.Clone(stored[2:])
		if !f.WaitFor(t, want) {
			t.FailNow()
		}

		// Live: 8 writers on other streams, and one on the stream.
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 40 {
					if _, err := other.Append(ctx, fmt.Sprintf("writer-%d-%d", w, i%4), event.Any, []any{testkit.Tick{Writer: w, Seq: i}}); err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
				}
			})
		}
		for i := range 30 {
			e, err := other.Append(ctx, "watched", event.Exact(int64(len(stored)+i)), []any{testkit.Tick{Writer: -1, Seq: i}})
			if err != nil {
				t.Fatalf("append to watched: %v", err)
			}
			want = append(want, e...)
		}
		wg.Wait()
		if !f.WaitFor(t, want) {
			t.FailNow()
		}

		if err := other.DeleteStream(ctx, "watched", event.Any); err != nil {
			t.Fatal(err)
		}
		select {
		case <-f.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("SubscribeStream did not end within 30s of the stream's deletion")
		}
		got, err := f.Stop(t)
		if !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("SubscribeStream ended with %v, want an error matching event.ErrStreamDeleted", err)
		}
		testkit.CheckEvents(t, "SubscribeStream", got, want)
	})
}

// A stream subscription wakes at once, without polling, when its stream
// grows or is deleted: through the same store (both databases), or
// another store on the database (PostgreSQL's LISTEN/NOTIFY).
func TestSubscribeStreamWakes(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		// Polling so rare that only wake-ups can end the test in time.
		db, s := setup(t, kind, eventstore.Options{PollInterval: time.Hour})
		writer := s
		if kind == testdb.Postgres {
			writer = testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		}
		ctx := t.Context()
		f := testkit.FollowSeq(ctx, func(ctx context.Context) iter.Seq2[event.Event, error] {
			return s.SubscribeStream(ctx, "later", 0)
		})
		// The stream does not exist yet: the subscription waits for it.
		want := testkit.MustAppend(t, writer, "later", event.NoStream, []any{testkit.Noted{Text: "first"}})
		if !f.WaitFor(t, want) {
			t.FailNow()
		}
		want = append(want, testkit.MustAppend(t, writer, "later", event.Exact(1), []any{testkit.Noted{Text: "second"}})...)
		if !f.WaitFor(t, want) {
			t.FailNow()
		}
		if err := writer.DeleteStream(ctx, "later", event.Exact(2)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-f.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("SubscribeStream did not end within 30s of the stream's deletion")
		}
		got, err := f.Stop(t)
		if !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("SubscribeStream ended with %v, want an error matching event.ErrStreamDeleted", err)
		}
		testkit.CheckEvents(t, "SubscribeStream", got, want)
	})
}

func TestSubscribeStreamFails(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond})
		testkit.MustAppend(t, s, "gone", event.NoStream, []any{testkit.Noted{Text: "x"}})
		if err := s.DeleteStream(t.Context(), "gone", event.Any); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			stream string
			after  int64
			want   error
		}{
			{"deleted before it starts", "gone", 0, event.ErrStreamDeleted},
			{"empty stream ID", "", 0, eventstore.ErrInvalidArgument},
			{"negative version", "x", -1, eventstore.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				got, err := testkit.Collect(s.SubscribeStream(ctx, tc.stream, tc.after))
				if !errors.Is(err, tc.want) || len(got) != 0 {
					t.Errorf("SubscribeStream(%q, %d) = %d events, %v; want none, %v", tc.stream, tc.after, len(got), err, tc.want)
				}
			})
		}
	})
}

// Batched subscriptions of one stream or a category yield exactly the
// events of the streams selected, by stream ID byte for byte (LIKE's
// wildcards and SQLite's case-insensitive LIKE must not leak in), and
// their Through covers the other streams' events.
func TestSubscribeBatchesOf(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond})
		streams := []string{"todo-1", "todo-12", "Todo-2", "todo_3", "todox", "todo%4", "todo-", "tod", "é-1", "é-2", "e-3", "other"}
		var all []event.Event
		for round := range 3 {
			for _, id := range streams {
				all = append(all, testkit.MustAppend(t, s, id, event.Any, []any{testkit.Deposited{Amount: round}, testkit.Noted{Text: id}})...)
			}
		}
		head := all[len(all)-1].Position
		for _, tc := range []struct {
			filter event.StreamFilter
			types  []string
		}{
			{event.OneStream("todo-1"), nil},
			{event.OneStream("é-1"), []string{testkit.TypeDeposited}},
			{event.Category("todo-"), nil},
			{event.Category("todo_"), nil},
			{event.Category("todo%"), nil},
			{event.Category("Todo"), nil},
			{event.Category("é-"), nil},
			{event.Category("todo-"), []string{testkit.TypeNoted}},
			{event.Category("nothing-"), nil},
		} {
			t.Run(tc.filter.String(), func(t *testing.T) {
				var want []event.Event
				for _, e := range all {
					if tc.filter.Match(e.StreamID) && (tc.types == nil || slices.Contains(tc.types, e.Type)) {
						want = append(want, e)
					}
				}
				var got []event.Event
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				for b, err := range s.SubscribeBatchesOf(ctx, tc.filter, 0, 4, tc.types...) {
					if err != nil {
						t.Fatalf("SubscribeBatchesOf(%s) after %d events: %v", tc.filter, len(got), err)
					}
					for _, e := range b.Events {
						if e.Position > b.Through {
							t.Errorf("batch through %d holds event %d", b.Through, e.Position)
						}
					}
					got = append(got, b.Events...)
					if b.Through == head {
						break
					}
				}
				testkit.CheckEvents(t, "SubscribeBatchesOf("+tc.filter.String()+")", got, want)

				b, err := s.ReadBatchOf(t.Context(), tc.filter, 0, len(all)+1, tc.types...)
				if err != nil {
					t.Fatal(err)
				}
				if b.Through != head {
					t.Errorf("ReadBatchOf(%s).Through = %d, want the head %d", tc.filter, b.Through, head)
				}
				testkit.CheckEvents(t, "ReadBatchOf("+tc.filter.String()+")", b.Events, want)
			})
		}
		t.Run("both an ID and a prefix", func(t *testing.T) {
			_, err := s.ReadBatchOf(t.Context(), event.StreamFilter{ID: "a", Prefix: "b"}, 0, 10)
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("ReadBatchOf(ID and prefix) = %v, want ErrInvalidArgument", err)
			}
			for _, err := range s.SubscribeBatchesOf(t.Context(), event.StreamFilter{ID: "a", Prefix: "b"}, 0, 10) {
				if !errors.Is(err, eventstore.ErrInvalidArgument) {
					t.Errorf("SubscribeBatchesOf(ID and prefix) = %v, want ErrInvalidArgument", err)
				}
			}
		})
	})
}
