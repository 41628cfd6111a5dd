package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// 16 goroutines, on two stores, append to one stream with the version they
// last read, retrying on conflict. Versions come out 1..N each once, every
// acknowledged event is stored, and every failure is a version conflict.
func TestConcurrentExactVersionAppends(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		const goroutines = 16
		perGoroutine := 10
		if testing.Short() {
			perGoroutine = 3
		}
		db, s := setup(t, kind, eventstore.Options{})
		stores := []*eventstore.Store{s, newStore(t, openAgain(t, db), newRegistry(), eventstore.Options{})}
		const stream = "contended"
		ctx := t.Context()

		acked := make([][]event.Event, goroutines)
		var conflicts atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range goroutines {
			wg.Go(func() {
				st := stores[g%len(stores)]
				<-start
				for seq, attempts := 0, 0; seq < perGoroutine; attempts++ {
					if attempts == 100*goroutines*perGoroutine {
						t.Errorf("goroutine %d: no progress after %d attempts", g, attempts)
						return
					}
					v, err := st.StreamVersion(ctx, stream)
					if err != nil {
						t.Errorf("goroutine %d: StreamVersion(%q) = %v", g, stream, err)
						return
					}
					exp := event.Exact(v)
					got, err := st.Append(ctx, stream, exp, []any{Tick{Writer: g, Seq: seq}})
					if err == nil {
						if len(got) != 1 || got[0].Version != v+1 {
							t.Errorf("goroutine %d: Append(%q, %v) = %s, want one event at version %d", g, stream, exp, places(got), v+1)
						}
						acked[g] = append(acked[g], got...)
						seq++
						continue
					}
					conflicts.Add(1)
					var vc *event.VersionConflictError
					if !errors.Is(err, event.ErrVersionConflict) || !errors.As(err, &vc) {
						t.Errorf("goroutine %d: Append(%q, %v) = %v, want nil or a version conflict", g, stream, exp, err)
						return
					}
					if vc.StreamID != stream || vc.Expected != exp || vc.Actual <= v {
						t.Errorf("goroutine %d: Append(%q, %v): VersionConflictError{%q, %v, %d}, want {%q, %v, above %d}",
							g, stream, exp, vc.StreamID, vc.Expected, vc.Actual, stream, exp, v)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		t.Logf("%d conflicts for %d appends", conflicts.Load(), goroutines*perGoroutine)

		n := goroutines * perGoroutine
		stored := mustCollect(t, "ReadStream", s.ReadStream(ctx, stream, 0, 0))
		if len(stored) != n {
			t.Errorf("ReadStream(%q) has %d events, want %d", stream, len(stored), n)
		}
		for i, e := range stored {
			if e.Version != int64(i+1) {
				t.Fatalf("ReadStream(%q): event %d has version %d, want %d", stream, i, e.Version, i+1)
			}
		}
		checkOrder(t, "ReadStream", stored)
		next := make([]int, goroutines)
		for _, e := range stored {
			tick := e.Data.(Tick)
			if tick.Seq != next[tick.Writer] {
				t.Errorf("goroutine %d: event %d stored at version %d, want event %d next", tick.Writer, tick.Seq, e.Version, next[tick.Writer])
			}
			next[tick.Writer] = tick.Seq + 1
		}
		for g, evs := range acked {
			for _, e := range evs {
				if e.Version < 1 || int(e.Version) > len(stored) {
					t.Errorf("goroutine %d: acknowledged event at version %d is not stored", g, e.Version)
					continue
				}
				if d := diffEvent(stored[e.Version-1], e); d != "" {
					t.Errorf("goroutine %d: acknowledged event at version %d: stored %s", g, e.Version, d)
				}
			}
		}
		if v := streamVersion(t, s, stream); v != int64(n) {
			t.Errorf("StreamVersion(%q) = %d, want %d", stream, v, n)
		}
	})
}

// orderingEvents is how many events the ordering tests write in all.
func orderingEvents(kind testdb.Kind) int {
	n := 4000
	if kind == testdb.Postgres {
		n = 20000
	}
	if testing.Short() {
		n /= 8
	}
	return n - n%8 // whole appends for 8 writers
}

// writeTicks appends n Tick events as writer w to the writer's own 16
// streams, in appends of 1 to 3 events with exact expected versions. Now
// and then it also makes an append that must fail (a version conflict or
// a duplicate ID), leaving a hole in the positions on some databases. It
// calls progress with the count of events stored so far by this call.
func writeTicks(ctx context.Context, s *eventstore.Store, w, n int, progress func(int)) ([]event.Event, error) {
	versions := make(map[string]int64)
	var out []event.Event
	for k := 0; len(out) < n; k++ {
		stream := fmt.Sprintf("w%d-%d", w, k%16)
		size := min(1+k%3, n-len(out))
		data := make([]any, size)
		for i := range data {
			data[i] = Tick{Writer: w, Seq: len(out) + i}
		}
		exp := event.Exact(versions[stream])
		got, err := s.Append(ctx, stream, exp, data)
		if err != nil {
			return out, fmt.Errorf("writer %d: Append(%q, %v) = %w", w, stream, exp, err)
		}
		versions[stream] += int64(size)
		out = append(out, got...)
		if progress != nil {
			progress(len(out))
		}
		if k%37 == 5 {
			_, err := s.Append(ctx, stream, event.Exact(versions[stream]+3), []any{Tick{Writer: w, Seq: -1}})
			if !errors.Is(err, event.ErrVersionConflict) {
				return out, fmt.Errorf("writer %d: Append(%q) at a wrong version = %v, want ErrVersionConflict", w, stream, err)
			}
		}
		if k%53 == 7 {
			_, err := s.Append(ctx, fmt.Sprintf("w%d-dup", w), event.Any, []any{Tick{Writer: w, Seq: -2}, Tick{Writer: w, Seq: -3}},
				event.WithIDs(uuid.New(), got[0].ID))
			if !errors.Is(err, event.ErrDuplicateEventID) {
				return out, fmt.Errorf("writer %d: Append of a stored ID = %v, want ErrDuplicateEventID", w, err)
			}
		}
	}
	return out, nil
}

// checkStored checks that every acknowledged event is stored as returned
// and that nothing else is.
func checkStored(t *testing.T, all []event.Event, acked []event.Event) {
	t.Helper()
	byID := make(map[uuid.UUID]int, len(all))
	for i, e := range all {
		byID[e.ID] = i
	}
	bad := 0
	for _, e := range acked {
		i, ok := byID[e.ID]
		switch {
		case !ok:
			t.Errorf("acknowledged event %s (ID %v) is not stored", places([]event.Event{e}), e.ID)
			bad++
		default:
			if d := diffEvent(all[i], e); d != "" {
				t.Errorf("acknowledged event %v: stored %s", e.ID, d)
				bad++
			}
		}
		if bad == 10 {
			t.Errorf("more differences not shown")
			break
		}
	}
	if len(all) != len(acked) {
		t.Errorf("the store holds %d events, want the %d acknowledged", len(all), len(acked))
	}
}

// 8 writers on two stores append to many streams while subscriptions
// follow, one started before the writes on each store and one in the
// middle: each receives every committed event once, in increasing
// positions, skipping none.
func TestSubscribeOrderingConcurrentWriters(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		const writers = 8
		total := orderingEvents(kind)
		opts := eventstore.Options{PollInterval: 20 * time.Millisecond}
		db, s := setup(t, kind, opts)
		s2 := newStore(t, openAgain(t, db), newRegistry(), opts)
		stores := []*eventstore.Store{s, s2}
		ctx := t.Context()

		early := follow(ctx, s, 0)
		early2 := follow(ctx, s2, 0)

		var (
			written atomic.Int64
			half    = make(chan struct{})
			once    sync.Once
			wg      sync.WaitGroup
			acked   = make([][]event.Event, writers)
		)
		for w := range writers {
			wg.Go(func() {
				last := 0
				var err error
				acked[w], err = writeTicks(ctx, stores[w%len(stores)], w, total/writers, func(n int) {
					if written.Add(int64(n-last)) >= int64(total/2) {
						once.Do(func() { close(half) })
					}
					last = n
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-half:
		case <-done:
		}
		late := follow(ctx, s2, 0)
		<-done

		all := mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		checkOrder(t, "ReadAll", all)
		var ackedAll []event.Event
		for _, a := range acked {
			ackedAll = append(ackedAll, a...)
		}
		checkStored(t, all, ackedAll)
		if len(all) != total {
			t.Errorf("ReadAll() has %d events, want %d", len(all), total)
		}
		for _, f := range []struct {
			name string
			f    *follower
		}{{"Subscribe on store 1 from the start", early}, {"Subscribe on store 2 from the start", early2}, {"Subscribe started midway", late}} {
			got := f.f.await(t, all)
			checkOrder(t, f.name, got)
			positionsEqual(t, f.name, got, all)
		}
	})
}
