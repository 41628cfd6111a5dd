package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// testGlobalOrder checks invariant 2: a reader that has seen position P
// never later finds an event before P. Eight writers append to many
// streams while live subscriptions follow, one started before the writes
// and one in the middle: each must receive every acknowledged event once,
// in increasing positions, skipping none.
func testGlobalOrder(t *testing.T, s *suite) {
	t.Run("writers_in_goroutines_on_two_stores", func(t *testing.T) { testOrderGoroutines(t, s) })
	t.Run("writers_in_child_processes_and_this_one", func(t *testing.T) { testOrderProcesses(t, s) })
}

func testOrderGoroutines(t *testing.T, s *suite) {
	db := s.database(t)
	r, err := VerifyOrder(t.Context(), OrderCheck{
		Open:    func() (*gorm.DB, error) { return db.open(t), nil },
		Options: options(t, s.cfg, nil),
		Events:  s.orderingEvents(),
		Writers: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Error(err)
	}
	if r.Written != s.orderingEvents() {
		t.Errorf("%d appended events were acknowledged, want %d", r.Written, s.orderingEvents())
	}
	// Event by event, where VerifyOrder only counts.
	all := r.received[0]
	testkit.CheckOrder(t, r.Readers[0].Name, all)
	testkit.CheckStored(t, all, r.acked)
	for i, rr := range r.Readers[1:] {
		got := r.received[i+1]
		testkit.CheckOrder(t, rr.Name, got)
		testkit.PositionsEqual(t, rr.Name, got, r.acked)
		if !t.Failed() {
			testkit.CheckEvents(t, rr.Name, got, r.acked)
		}
	}
}

func testOrderProcesses(t *testing.T, s *suite) {
	const (
		processes     = 2
		childWriters  = 3 // per process
		parentWriters = 2
	)
	total := s.orderingEvents()
	perWriter := total / (processes*childWriters + parentWriters)
	total = perWriter * (processes*childWriters + parentWriters)
	db := s.database(t)
	st := db.migrated(t)
	other := db.store(t)
	ctx := t.Context()
	early := testkit.Follow(ctx, st, 0)

	dir := t.TempDir()
	var children []*testkit.Child
	for p := range processes {
		children = append(children, s.startChild(t, childSpec{
			Role:    "write",
			DSN:     db.dsn,
			First:   parentWriters + p*childWriters,
			Writers: childWriters,
			Events:  perWriter,
			Out:     filepath.Join(dir, fmt.Sprintf("acked-%d.json", p)),
		}))
	}
	for _, c := range children {
		c.Release(t)
	}
	acked := make([][]event.Event, parentWriters)
	var wg sync.WaitGroup
	for w := range parentWriters {
		wg.Go(func() {
			var err error
			acked[w], err = writeTicks(ctx, []*eventstore.Store{st, other}[w%2], w, perWriter, nil)
			if err != nil {
				t.Error(err)
			}
		})
	}
	// Start another subscription once about half the events are in.
	parentDone := make(chan struct{})
	go func() { wg.Wait(); close(parentDone) }()
half:
	for {
		if n, _ := early.Progress(); n >= total/2 {
			break
		}
		select {
		case <-early.Done():
			break half
		case <-parentDone:
			break half
		case <-time.After(5 * time.Millisecond):
		}
	}
	late := testkit.Follow(ctx, other, 0)
	<-parentDone
	for p, c := range children {
		if err := c.Wait(); err != nil {
			t.Errorf("writer process %d: %v", p, err)
		}
	}
	if t.Failed() {
		early.Stop(t)
		late.Stop(t)
		t.FailNow()
	}
	all := slices.Concat(acked...)
	for p := range processes {
		evs, err := readAcked(filepath.Join(dir, fmt.Sprintf("acked-%d.json", p)))
		if err != nil {
			t.Fatalf("acknowledged events of writer process %d: %v", p, err)
		}
		all = append(all, evs...)
	}
	checkGlobalOrder(t, st, all, total, []namedFollower{
		{"Subscribe from the start", early},
		{"Subscribe started midway", late},
	})
}

// namedFollower is a subscription with the name it has in messages.
type namedFollower struct {
	name string
	f    *testkit.Follower
}

// checkGlobalOrder checks, once the writers are done, that the store
// holds exactly the acknowledged events, in increasing positions, and that
// each subscription received all of them, in order, once.
func checkGlobalOrder(t *testing.T, st *eventstore.Store, acked []event.Event, total int, subs []namedFollower) {
	t.Helper()
	slices.SortFunc(acked, func(a, b event.Event) int { return cmp.Compare(a.Position, b.Position) })
	all := testkit.MustCollect(t, "ReadAll", st.ReadAll(t.Context(), 0, 0))
	testkit.CheckOrder(t, "ReadAll", all)
	testkit.CheckStored(t, all, acked)
	if len(acked) != total {
		t.Errorf("%d appended events were acknowledged, want %d", len(acked), total)
	}
	for _, sub := range subs {
		got := sub.f.Await(t, acked)
		testkit.CheckOrder(t, sub.name, got)
		testkit.PositionsEqual(t, sub.name, got, acked)
		if !t.Failed() {
			testkit.CheckEvents(t, sub.name, got, acked)
		}
	}
}

// writeTicks appends n Tick events as writer w to the writer's own 16
// streams, in appends of 1 to 3 events with exact expected versions. Now
// and then it also makes an append that must fail (a version conflict or
// a duplicate ID), leaving a hole in the positions on some databases. It
// calls progress, if set, with the count of events stored so far.
func writeTicks(ctx context.Context, s *eventstore.Store, w, n int, progress func(int)) ([]event.Event, error) {
	versions := make(map[string]int64)
	var out []event.Event
	for k := 0; len(out) < n; k++ {
		stream := fmt.Sprintf("w%d-%d", w, k%16)
		size := min(1+k%3, n-len(out))
		data := make([]any, size)
		for i := range data {
			data[i] = testkit.Tick{Writer: w, Seq: len(out) + i}
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
			_, err := s.Append(ctx, stream, event.Exact(versions[stream]+3), []any{testkit.Tick{Writer: w, Seq: -1}})
			if !errors.Is(err, event.ErrVersionConflict) {
				return out, fmt.Errorf("writer %d: Append(%q) at a wrong version = %v, want ErrVersionConflict", w, stream, err)
			}
		}
		if k%53 == 7 {
			_, err := s.Append(ctx, fmt.Sprintf("w%d-dup", w), event.Any, []any{testkit.Tick{Writer: w, Seq: -2}, testkit.Tick{Writer: w, Seq: -3}},
				event.WithIDs(uuid.New(), got[0].ID))
			if !errors.Is(err, event.ErrDuplicateEventID) {
				return out, fmt.Errorf("writer %d: Append of a stored ID = %v, want ErrDuplicateEventID", w, err)
			}
		}
	}
	return out, nil
}
