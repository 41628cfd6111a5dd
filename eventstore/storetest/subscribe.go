package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// testSubscriptions checks live subscriptions: catch-up then live, from
// any position, with a type filter, and how they end.
func testSubscriptions(t *testing.T, s *suite) {
	t.Run("catch_up_then_live_events_of_every_store", func(t *testing.T) { testCatchUpThenLive(t, s) })
	t.Run("type_filter_yields_only_those_types", func(t *testing.T) { testTypeFilter(t, s) })
	t.Run("start_and_end", func(t *testing.T) { testSubscriptionEnds(t, s) })
}

func testCatchUpThenLive(t *testing.T, s *suite) {
	db := s.database(t)
	st := db.migrated(t)
	other := db.store(t)
	ctx := t.Context()
	var want []event.Event
	for i := range 5 {
		want = append(want, testkit.MustAppend(t, st, fmt.Sprintf("acct-%d", i%2), event.Any,
			[]any{testkit.Deposited{Amount: i}, testkit.Noted{Text: fmt.Sprint(i)}})...)
	}
	fromStart := testkit.Follow(ctx, st, 0)
	fromMiddle := testkit.Follow(ctx, other, want[3].Position)
	if !fromStart.WaitFor(t, want) {
		t.FailNow()
	}
	// Live events, written by the subscribed store and by another one.
	for i := range 6 {
		got, err := []*eventstore.Store{st, other}[i%2].Append(ctx, fmt.Sprintf("acct-%d", i%3), event.Any, []any{testkit.Withdrawn{Amount: i}})
		if err != nil {
			t.Fatalf("Append(live %d) = %v, want nil", i, err)
		}
		want = append(want, got...)
		if i == 2 && !fromStart.WaitFor(t, want) {
			t.FailNow()
		}
	}
	testkit.CheckEvents(t, "Subscribe(0)", fromStart.Await(t, want), want)
	testkit.CheckEvents(t, fmt.Sprintf("Subscribe(%d) on another store", want[3].Position), fromMiddle.Await(t, want[4:]), want[4:])
}

func testTypeFilter(t *testing.T, s *suite) {
	db := s.database(t)
	st := db.migrated(t)
	other := db.store(t)
	ctx := t.Context()

	var all []event.Event
	all = append(all, testkit.MustAppend(t, st, "a", event.NoStream, []any{testkit.Opened{Owner: "a"}, testkit.Deposited{Amount: 1}, testkit.Noted{Text: "n1"}})...)
	all = append(all, testkit.MustAppend(t, st, "b", event.NoStream, []any{testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3}})...)

	deposits := testkit.Follow(ctx, st, 0, testkit.TypeDeposited)
	mixed := testkit.Follow(ctx, other, 0, testkit.TypeNoted, testkit.TypeOpened)
	deposits.WaitFor(t, filter(all, testkit.TypeDeposited))

	// Live events, written by this store and by another one.
	all = append(all, testkit.MustAppend(t, st, "a", event.Exact(3), []any{testkit.Noted{Text: "n2"}, testkit.Deposited{Amount: 4}})...)
	all = append(all, testkit.MustAppend(t, other, "c", event.NoStream, []any{testkit.Deposited{Amount: 5}, testkit.Opened{Owner: "c"}})...)
	all = append(all, testkit.MustAppend(t, st, "c", event.Exact(2), []any{testkit.Noted{Text: "n3"}})...)
	all = append(all, testkit.MustAppend(t, other, "b", event.Any, []any{testkit.Deposited{Amount: 6}})...)

	wantDeposits := filter(all, testkit.TypeDeposited)
	testkit.CheckEvents(t, "Subscribe(deposits)", deposits.Await(t, wantDeposits), wantDeposits)
	wantMixed := filter(all, testkit.TypeNoted, testkit.TypeOpened)
	slices.SortFunc(wantMixed, func(a, b event.Event) int { return cmp.Compare(a.Position, b.Position) })
	testkit.CheckEvents(t, "Subscribe(notes, opened)", mixed.Await(t, wantMixed), wantMixed)
}

func testSubscriptionEnds(t *testing.T, s *suite) {
	st := s.database(t).migrated(t, pageSize(5))
	ctx := t.Context()
	var written []event.Event
	for i := range 10 {
		written = append(written, testkit.MustAppend(t, st, fmt.Sprintf("s%d", i%3), event.Any,
			[]any{testkit.Deposited{Amount: i}, testkit.Noted{Text: fmt.Sprint(i)}, testkit.Tick{Seq: i}})...)
	}

	t.Run("ends_with_context_canceled_when_idle", func(t *testing.T) {
		f := testkit.Follow(ctx, st, 0)
		f.WaitFor(t, written)
		got, err := f.Stop(t)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe ended with %v, want context.Canceled", err)
		}
		testkit.CheckEvents(t, "Subscribe", got, written)
	})

	t.Run("ends_with_deadline_exceeded", func(t *testing.T) {
		after, want := written[len(written)-3].Position, written[len(written)-2:]
		// until subscribes until the deadline and returns what came.
		until := func(timeout time.Duration) []event.Event {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var got []event.Event
			var errs []error
			for e, err := range st.Subscribe(dctx, after) {
				if err != nil {
					if !reflect.DeepEqual(e, event.Event{}) {
						t.Errorf("Subscribe yielded %s with error %v, want the zero Event", testkit.Places([]event.Event{e}), err)
					}
					errs = append(errs, err)
					continue
				}
				if len(errs) > 0 {
					t.Errorf("Subscribe yielded %s after its final error", testkit.Places([]event.Event{e}))
				}
				got = append(got, e)
			}
			if len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
				t.Errorf("Subscribe yielded errors %v, want exactly one context.DeadlineExceeded", errs)
			}
			return got
		}
		// A deadline that passes before the catch-up is done cuts it
		// short: a slow machine gets a longer one.
		for timeout := 300 * time.Millisecond; ; timeout *= 2 {
			got := until(timeout)
			if len(got) < len(want) && timeout < 10*time.Second {
				testkit.CheckEvents(t, "Subscribe cut short by its deadline", got, want[:len(got)])
				continue
			}
			testkit.CheckEvents(t, "Subscribe", got, want)
			break
		}
	})

	t.Run("ends_with_context_canceled_during_catch_up", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		next, stop := iter.Pull2(st.Subscribe(cctx, 0))
		defer stop()
		e, err, ok := next()
		if !ok || err != nil {
			t.Fatalf("Subscribe: first item = %v, %v, %v; want an event", testkit.Places([]event.Event{e}), err, ok)
		}
		got := []event.Event{e}
		cancel()
		for i := 0; ; i++ {
			e, err, ok := next()
			if !ok {
				t.Fatalf("Subscribe stopped after cancel without yielding ctx.Err() (after %d events)", len(got))
			}
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Subscribe: error after cancel = %v, want context.Canceled", err)
				}
				if !reflect.DeepEqual(e, event.Event{}) {
					t.Errorf("Subscribe yielded %s with its final error, want the zero Event", testkit.Places([]event.Event{e}))
				}
				break
			}
			got = append(got, e)
			if i > len(written) {
				t.Fatalf("Subscribe goes on after cancel: %d events", len(got))
			}
		}
		if _, _, ok := next(); ok {
			t.Errorf("Subscribe yielded again after its final error, want it to stop")
		}
		// What it gave before stopping is a prefix of the store.
		testkit.CheckEvents(t, "Subscribe before cancel", got, written[:min(len(got), len(written))])
	})

	t.Run("ends_at_once_when_cancelled_before_start", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		var errs []error
		for _, err := range st.Subscribe(cctx, 0) {
			if err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("Subscribe with a cancelled context yielded errors %v, want exactly one context.Canceled", errs)
		}
	})

	t.Run("ends_on_break_leaving_the_store_working", func(t *testing.T) {
		n := 0
		for _, err := range st.Subscribe(ctx, 0) {
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			if n++; n == 2 {
				break
			}
		}
		// The store still takes appends and wakes other subscribers.
		f := testkit.Follow(ctx, st, testkit.Head(t, st))
		e := testkit.MustAppend(t, st, "after-break", event.NoStream, []any{testkit.Noted{}})
		testkit.CheckEvents(t, "Subscribe after a break", f.Await(t, e), e)
	})

	t.Run("from_the_head_gets_only_new_events", func(t *testing.T) {
		f := testkit.Follow(ctx, st, testkit.Head(t, st))
		var want []event.Event
		for i := range 3 {
			want = append(want, testkit.MustAppend(t, st, "new", event.Any, []any{testkit.Noted{Text: fmt.Sprint(i)}})...)
		}
		testkit.CheckEvents(t, "Subscribe(head)", f.Await(t, want), want)
	})
}

// testBatches checks the reads that event processors use: ReadBatch and
// SubscribeBatches report how far they read, past events of other types.
func testBatches(t *testing.T, s *suite) {
	t.Run("ReadBatch_through_covers_other_types", func(t *testing.T) {
		st := s.database(t).migrated(t)
		ctx := t.Context()
		opened := testkit.MustAppend(t, st, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
		notes := testkit.MustAppend(t, st, "notes", event.NoStream, []any{testkit.Noted{Text: "a"}, testkit.Noted{Text: "b"}, testkit.Noted{Text: "c"}})
		last := notes[len(notes)-1].Position

		b, err := st.ReadBatch(ctx, 0, 10, testkit.TypeOpened)
		if err != nil {
			t.Fatalf("ReadBatch(opened) = %v", err)
		}
		testkit.CheckEvents(t, "ReadBatch(opened)", b.Events, opened)
		if b.Through != last {
			t.Errorf("ReadBatch(opened).Through = %d, want the head %d: the notes after it were read past", b.Through, last)
		}

		b, err = st.ReadBatch(ctx, b.Through, 10, testkit.TypeOpened)
		if err != nil || len(b.Events) != 0 || b.Through != last {
			t.Errorf("ReadBatch(after head) = %d events, through %d, %v; want none, through %d", len(b.Events), b.Through, err, last)
		}

		// A full batch ends at its last event: the rest is not read yet.
		b, err = st.ReadBatch(ctx, 0, 2)
		if err != nil {
			t.Fatalf("ReadBatch(limit 2) = %v", err)
		}
		if len(b.Events) != 2 || b.Through != b.Events[1].Position {
			t.Errorf("ReadBatch(limit 2) = %d events through %d, want 2 through the second event's position", len(b.Events), b.Through)
		}
	})

	t.Run("ReadBatch_never_goes_back", func(t *testing.T) {
		st := s.database(t).migrated(t)
		ctx := t.Context()
		testkit.MustAppend(t, st, "keep", event.NoStream, []any{testkit.Noted{Text: "kept"}})
		gone := testkit.MustAppend(t, st, "gone", event.NoStream, []any{testkit.Noted{Text: "forgotten"}})
		pos := gone[0].Position
		if err := st.DeleteStream(ctx, "gone", event.Any); err != nil {
			t.Fatal(err)
		}
		// The head moved back below pos: a reader at pos stays there.
		b, err := st.ReadBatch(ctx, pos, 10)
		if err != nil || len(b.Events) != 0 || b.Through != pos {
			t.Errorf("ReadBatch(%d) after deleting the newest stream = %d events, through %d, %v; want none through %d", pos, len(b.Events), b.Through, err, pos)
		}
	})

	t.Run("SubscribeBatches_catches_up_in_batches_then_moves_through_live", func(t *testing.T) {
		st := s.database(t).migrated(t)
		var want []event.Event
		for i := range 5 {
			want = append(want, testkit.MustAppend(t, st, "ticks", event.Any, []any{testkit.Tick{Seq: 2 * i}, testkit.Tick{Seq: 2*i + 1}})...)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var got []event.Event
		var batches int
		var through int64
		for b, err := range st.SubscribeBatches(ctx, 0, 4, testkit.TypeTick) {
			if err != nil {
				t.Fatalf("SubscribeBatches: %v after %d events", err, len(got))
			}
			batches++
			if len(b.Events) > 4 {
				t.Fatalf("batch of %d events, want at most the limit 4", len(b.Events))
			}
			if b.Through < through {
				t.Fatalf("Through went back from %d to %d", through, b.Through)
			}
			through = b.Through
			got = append(got, b.Events...)
			if len(got) == len(want) && batches == 3 {
				// Caught up; now a live append of another type only moves
				// Through.
				testkit.MustAppend(t, st, "notes", event.Any, []any{testkit.Noted{Text: "not a tick"}})
				continue
			}
			if len(got) == len(want) && batches > 3 {
				if len(b.Events) != 0 {
					t.Fatalf("live batch holds %d events, want only a position update", len(b.Events))
				}
				if h := testkit.Head(t, st); b.Through != h {
					t.Fatalf("live batch through %d, want the head %d", b.Through, h)
				}
				break
			}
		}
		testkit.CheckEvents(t, "SubscribeBatches", got, want)
		if batches != 4 {
			t.Errorf("got %d batches, want 3 of catch-up (4+4+2) and 1 live", batches)
		}
	})
}
