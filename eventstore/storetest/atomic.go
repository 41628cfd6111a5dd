package storetest

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
	"github.com/cairnhq/cairn/internal/testkit"
)

// testAtomic checks that an append is stored whole or not at all, alone
// or sharing a transaction with others.
func testAtomic(t *testing.T, s *suite) {
	t.Run("rejected_appends_in_a_shared_batch_leave_no_trace", func(t *testing.T) { testAtomicInBatch(t, s) })
	t.Run("cancelled_appends_are_stored_whole_or_not_at_all", func(t *testing.T) { testCancelledInFlight(t, s) })
	t.Run("one_append_of_many_events_is_stored_whole", func(t *testing.T) { testManyEventsAtOnce(t, s) })
	t.Run("one_store_wins_each_race_and_bystanders_are_stored", func(t *testing.T) { testRacesAcrossStores(t, s) })
}

// testAtomicInBatch: appends fired together land in one group-commit
// transaction; the ones that fail their checks leave no trace and the
// others are stored.
func testAtomicInBatch(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	ctx := t.Context()
	taken := uuid.New()
	testkit.MustAppend(t, st, "existing", event.NoStream, []any{testkit.Opened{Owner: "ann"}}, event.WithIDs(taken))

	type job struct {
		stream   string
		expected event.ExpectedVersion
		ids      []uuid.UUID
		want     error // nil: succeeds
		got      []event.Event
		err      error
	}
	newIDs := func(n int) []uuid.UUID {
		ids := make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = uuid.New()
		}
		return ids
	}
	var succeeded []event.Event
	failedIDs := map[uuid.UUID]string{}
	for round := range 10 {
		jobs := []*job{
			{stream: fmt.Sprintf("ok-%d-a", round), expected: event.NoStream, ids: newIDs(3)},
			{stream: fmt.Sprintf("ok-%d-b", round), expected: event.Any, ids: newIDs(2)},
			{stream: "existing", expected: event.NoStream, ids: newIDs(3), want: event.ErrVersionConflict},
			{stream: fmt.Sprintf("ok-%d-c", round), expected: event.NoStream, ids: newIDs(1)},
			{stream: fmt.Sprintf("bad-%d-d", round), expected: event.Exact(5), ids: newIDs(2), want: event.ErrVersionConflict},
			{stream: fmt.Sprintf("bad-%d-e", round), expected: event.NoStream, ids: append(newIDs(2), taken), want: event.ErrDuplicateEventID},
			{stream: fmt.Sprintf("bad-%d-f", round), expected: event.StreamExists, ids: newIDs(1), want: event.ErrVersionConflict},
			{stream: fmt.Sprintf("ok-%d-g", round), expected: event.NoStream, ids: newIDs(4)},
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, j := range jobs {
			wg.Go(func() {
				data := make([]any, len(j.ids))
				for i := range data {
					data[i] = testkit.Tick{Writer: round, Seq: i}
				}
				<-start
				j.got, j.err = st.Append(ctx, j.stream, j.expected, data, event.WithIDs(j.ids...))
			})
		}
		close(start)
		wg.Wait()
		for _, j := range jobs {
			if j.want == nil {
				if j.err != nil {
					t.Errorf("round %d: Append(%q, %v) = %v, want nil", round, j.stream, j.expected, j.err)
					continue
				}
				succeeded = append(succeeded, j.got...)
				continue
			}
			if !errors.Is(j.err, j.want) {
				t.Errorf("round %d: Append(%q, %v) = %v, want %v", round, j.stream, j.expected, j.err, j.want)
			}
			for _, id := range j.ids {
				if id != taken {
					failedIDs[id] = j.stream
				}
			}
			if j.stream != "existing" {
				if v := testkit.StreamVersion(t, st, j.stream); v != 0 {
					t.Errorf("round %d: StreamVersion(%q) = %d after a failed append, want 0", round, j.stream, v)
				}
			}
		}
	}
	if v := testkit.StreamVersion(t, st, "existing"); v != 1 {
		t.Errorf("StreamVersion(existing) = %d, want 1", v)
	}
	all := testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, 0, 0))
	testkit.CheckOrder(t, "ReadAll", all)
	byID := map[uuid.UUID]event.Event{}
	for _, e := range all {
		byID[e.ID] = e
		if stream, bad := failedIDs[e.ID]; bad {
			t.Errorf("ReadAll has event %v (%s) of a failed append to %q", e.ID, testkit.Places([]event.Event{e}), stream)
		}
	}
	for _, e := range succeeded {
		got, ok := byID[e.ID]
		if !ok {
			t.Errorf("event %s returned by a successful Append is not stored", testkit.Places([]event.Event{e}))
			continue
		}
		if d := testkit.DiffEvent(got, e); d != "" {
			t.Errorf("stored event %v: %s", e.ID, d)
		}
	}
	if want := len(succeeded) + 1; len(all) != want {
		t.Errorf("ReadAll() has %d events, want %d", len(all), want)
	}
}

// testCancelledInFlight: appends whose contexts are cancelled at random
// moments, some while they wait in the group-commit queue and some while
// their batch commits: an append that reports success is stored, one that
// reports context.Canceled left nothing.
func testCancelledInFlight(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	const writers, perWriter = 8, 40
	type attempt struct {
		ids []uuid.UUID
		got []event.Event
		err error
	}
	attempts := make([][]attempt, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				ctx, cancel := context.WithCancel(t.Context())
				delay := time.Duration((w*perWriter+i)*7919%3000) * time.Microsecond
				stop := time.AfterFunc(delay, cancel)
				ids := []uuid.UUID{uuid.New(), uuid.New()}
				got, err := st.Append(ctx, fmt.Sprintf("c-%d", w), event.Any,
					[]any{testkit.Tick{Writer: w, Seq: 2 * i}, testkit.Tick{Writer: w, Seq: 2*i + 1}}, event.WithIDs(ids...))
				stop.Stop()
				cancel()
				attempts[w] = append(attempts[w], attempt{ids, got, err})
			}
		})
	}
	wg.Wait()
	all := testkit.MustCollect(t, "ReadAll", st.ReadAll(t.Context(), 0, 0))
	stored := map[uuid.UUID]event.Event{}
	for _, e := range all {
		stored[e.ID] = e
	}
	var ok, cancelled int
	for w, as := range attempts {
		for i, a := range as {
			switch {
			case a.err == nil:
				ok++
				for _, e := range a.got {
					if d := testkit.DiffEvent(stored[e.ID], e); d != "" {
						t.Errorf("writer %d append %d succeeded, but its event %v is stored as: %s", w, i, e.ID, d)
					}
				}
			case errors.Is(a.err, context.Canceled):
				cancelled++
				for _, id := range a.ids {
					if e, found := stored[id]; found {
						t.Errorf("writer %d append %d returned %v, but its event %s is stored", w, i, a.err, testkit.Places([]event.Event{e}))
					}
				}
			default:
				t.Errorf("writer %d append %d = %v, want nil or context.Canceled", w, i, a.err)
			}
		}
	}
	t.Logf("%d appends succeeded, %d cancelled", ok, cancelled)
	if len(all) != 2*ok {
		t.Errorf("the store holds %d events, want %d (2 per successful append)", len(all), 2*ok)
	}
	// Stream versions have no holes.
	for w := range writers {
		stream := fmt.Sprintf("c-%d", w)
		evs := testkit.MustCollect(t, "ReadStream", st.ReadStream(t.Context(), stream, 0, 0))
		for i, e := range evs {
			if e.Version != int64(i+1) {
				t.Errorf("stream %s: event %d has version %d, want %d", stream, i, e.Version, i+1)
				break
			}
		}
	}
}

// testManyEventsAtOnce: one append far larger than a group-commit batch
// and than SQLite's limit of bound variables per statement.
func testManyEventsAtOnce(t *testing.T, s *suite) {
	n := 20000
	if testing.Short() {
		n = 5000
	}
	st := s.database(t).migrated(t)
	data := make([]any, n)
	for i := range data {
		data[i] = testkit.Tick{Seq: i}
	}
	testkit.MustAppend(t, st, "before", event.NoStream, []any{testkit.Noted{}})
	got := testkit.MustAppend(t, st, "many", event.NoStream, data, event.WithCorrelationID("bulk"))
	testkit.CheckOrder(t, "Append", got)
	for i, e := range got {
		if e.Version != int64(i+1) || e.Data != data[i] {
			t.Fatalf("Append: event %d is version %d with %v, want version %d with %v", i, e.Version, e.Data, i+1, data[i])
		}
	}
	testkit.CheckEvents(t, "ReadStream(many)", testkit.MustCollect(t, "ReadStream", st.ReadStream(t.Context(), "many", 0, 0)), got)
	if v := testkit.StreamVersion(t, st, "many"); v != int64(n) {
		t.Errorf("StreamVersion(many) = %d, want %d", v, n)
	}
	if all := testkit.MustCollect(t, "ReadAll", st.ReadAll(t.Context(), 0, 0)); len(all) != n+1 {
		t.Errorf("ReadAll() has %d events, want %d", len(all), n+1)
	}
}

// testRacesAcrossStores: two stores (as two processes would) race on a
// new stream and on a new event ID while other appends share their
// batches: exactly one contender wins each race, the losers get the right
// error, and the bystanders in the same batches are stored.
func testRacesAcrossStores(t *testing.T, s *suite) {
	db := s.database(t)
	st := db.migrated(t)
	stores := []*eventstore.Store{st, db.store(t)}
	ctx := t.Context()
	rounds := 15
	if testing.Short() {
		rounds = 4
	}
	var bystanders []event.Event
	for round := range rounds {
		shared := uuid.New()
		var (
			wg                 sync.WaitGroup
			mu                 sync.Mutex
			streamWins, idWins int
			streamErrs, idErrs []error
			bystanderErrs      []error
			start              = make(chan struct{})
		)
		for i := range 12 {
			store := stores[i%2]
			wg.Go(func() {
				<-start
				switch i / 4 {
				case 0: // race for a new stream
					_, err := store.Append(ctx, fmt.Sprintf("race-%d", round), event.NoStream, []any{testkit.Tick{Writer: i}})
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						streamWins++
					} else if !errors.Is(err, event.ErrVersionConflict) {
						streamErrs = append(streamErrs, err)
					}
				case 1: // race for a new event ID
					_, err := store.Append(ctx, fmt.Sprintf("id-%d-%d", round, i), event.NoStream, []any{testkit.Tick{Writer: i}}, event.WithIDs(shared))
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						idWins++
					} else if !errors.Is(err, event.ErrDuplicateEventID) {
						idErrs = append(idErrs, err)
					}
				default: // bystander
					got, err := store.Append(ctx, fmt.Sprintf("by-%d-%d", round, i), event.NoStream,
						[]any{testkit.Tick{Writer: i}, testkit.Tick{Writer: i, Seq: 1}})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						bystanderErrs = append(bystanderErrs, err)
					}
					bystanders = append(bystanders, got...)
				}
			})
		}
		close(start)
		wg.Wait()
		if streamWins != 1 || len(streamErrs) > 0 {
			t.Errorf("round %d: %d of 4 racing Append(NoStream) won, other errors %v; want 1 winner and version conflicts", round, streamWins, streamErrs)
		}
		if idWins != 1 || len(idErrs) > 0 {
			t.Errorf("round %d: %d of 4 racing appends of one ID won, other errors %v; want 1 winner and duplicate-ID errors", round, idWins, idErrs)
		}
		if len(bystanderErrs) > 0 {
			t.Errorf("round %d: bystander appends failed: %v", round, bystanderErrs)
		}
	}
	all := testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, 0, 0))
	testkit.CheckOrder(t, "ReadAll", all)
	if want := rounds * (1 + 1 + 2*4); len(all) != want {
		t.Errorf("ReadAll() has %d events, want %d", len(all), want)
	}
	byID := map[uuid.UUID]event.Event{}
	for _, e := range all {
		byID[e.ID] = e
	}
	for _, e := range bystanders {
		if d := testkit.DiffEvent(byID[e.ID], e); d != "" {
			t.Errorf("bystander event %v: %s", e.ID, d)
		}
	}
}

// testVersions: 16 goroutines, on two stores, append to one stream with
// the version they last read, retrying on conflict. Versions come out 1..N
// each once, every acknowledged event is stored, and every failure is a
// version conflict naming the stream and a newer version.
func testVersions(t *testing.T, s *suite) {
	const goroutines = 16
	perGoroutine := 10
	if testing.Short() {
		perGoroutine = 3
	}
	db := s.database(t)
	st := db.migrated(t)
	stores := []*eventstore.Store{st, db.store(t)}
	const stream = "contended"
	ctx := t.Context()

	acked := make([][]event.Event, goroutines)
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			store := stores[g%len(stores)]
			<-start
			for seq, attempts := 0, 0; seq < perGoroutine; attempts++ {
				if attempts == 100*goroutines*perGoroutine {
					t.Errorf("goroutine %d: no progress after %d attempts", g, attempts)
					return
				}
				v, err := store.StreamVersion(ctx, stream)
				if err != nil {
					t.Errorf("goroutine %d: StreamVersion(%q) = %v", g, stream, err)
					return
				}
				exp := event.Exact(v)
				got, err := store.Append(ctx, stream, exp, []any{testkit.Tick{Writer: g, Seq: seq}})
				if err == nil {
					if len(got) != 1 || got[0].Version != v+1 {
						t.Errorf("goroutine %d: Append(%q, %v) = %s, want one event at version %d", g, stream, exp, testkit.Places(got), v+1)
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
	stored := testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, stream, 0, 0))
	if len(stored) != n {
		t.Errorf("ReadStream(%q) has %d events, want %d", stream, len(stored), n)
	}
	for i, e := range stored {
		if e.Version != int64(i+1) {
			t.Fatalf("ReadStream(%q): event %d has version %d, want %d", stream, i, e.Version, i+1)
		}
	}
	testkit.CheckOrder(t, "ReadStream", stored)
	next := make([]int, goroutines)
	for _, e := range stored {
		tick := e.Data.(testkit.Tick)
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
			if d := testkit.DiffEvent(stored[e.Version-1], e); d != "" {
				t.Errorf("goroutine %d: acknowledged event at version %d: stored %s", g, e.Version, d)
			}
		}
	}
	if v := testkit.StreamVersion(t, st, stream); v != int64(n) {
		t.Errorf("StreamVersion(%q) = %d, want %d", stream, v, n)
	}
}
