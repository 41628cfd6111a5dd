package processing_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// held returns how many of p's partitions owner runs, as p sees them.
func held(p *processing.Processor, owner string) int {
	n := 0
	for _, s := range p.Status().Partitions {
		if s.Owner == owner && s.State != processing.Standby {
			n++
		}
	}
	return n
}

// TestPartitionsShareFairly runs one partitioned processor in several
// "processes" (processors with their own owner IDs on one database): the
// partitions spread evenly, move when a process joins and when one
// leaves, and every event is handled, in order within its stream.
func TestPartitionsShareFairly(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 600, 30, 3)
		own := func(owner string) processing.Ownership {
			return processing.Ownership{Owner: owner, LeaseDuration: 3 * time.Second, HeartbeatInterval: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond}
		}
		opts := processing.Options{Partitions: 6, BatchSize: 20}
		procs := map[string]*processing.Processor{}
		recs := map[string]*recorder{}
		stops := map[string]func() error{}
		start := func(owner string) {
			recs[owner] = &recorder{}
			procs[owner] = newProcessor(t, s, "shared", recs[owner], opts)
			stops[owner] = startOwned(t, procs[owner], own(owner))
		}
		waitShares := func(want map[string]int) {
			t.Helper()
			testkit.Eventually(t, time.Minute, fmt.Sprintf("partitions held %v", want), func() bool {
				for owner, n := range want {
					if held(procs[owner], owner) != n {
						return false
					}
				}
				return true
			})
		}
		for _, o := range []string{"A", "B", "C"} {
			start(o)
		}
		waitShares(map[string]int{"A": 2, "B": 2, "C": 2})

		// A fourth joins: sorted by owner ID, A and B keep two, C and D
		// hold one each.
		start("D")
		waitShares(map[string]int{"A": 2, "B": 2, "C": 1, "D": 1})

		// B leaves: the other three take its partitions.
		if err := stops["B"](); err != nil {
			t.Fatalf("RunOwned(B) = %v", err)
		}
		waitShares(map[string]int{"A": 2, "C": 2, "D": 2})

		// Re-partitioning while processes hold partitions is refused.
		if err := processing.Repartition(t.Context(), s, "shared", 3); !errors.Is(err, processing.ErrRunning) {
			t.Errorf("Repartition() while running = %v, want ErrRunning", err)
		}

		more := testkit.Fill(t, s, 300, 30, 3)
		for _, o := range []string{"A", "C", "D"} {
			testkit.WaitFor(t, procs[o], more)
		}
		seen := map[int64]bool{}
		for _, r := range recs {
			for _, pos := range r.positions() {
				seen[pos] = true
			}
		}
		all := testkit.MustCollect(t, "all", s.ReadAll(t.Context(), 0, 0))
		for _, e := range all {
			if !seen[e.Position] {
				t.Errorf("event at %d (stream %s) never handled", e.Position, e.StreamID)
			}
		}
		if head >= more {
			t.Fatalf("head %d, then %d", head, more)
		}
		// The partitions' rows: one per partition, with a live owner.
		rows, err := s.ListPositions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rows {
			if r.Name != "shared" {
				names = append(names, r.Name)
				if r.Owner == "" || r.Owner == "B" {
					t.Errorf("row %s owned by %q, want A, C or D", r.Name, r.Owner)
				}
			}
		}
		want := []string{"shared#0/6", "shared#1/6", "shared#2/6", "shared#3/6", "shared#4/6", "shared#5/6"}
		if !slices.Equal(names, want) {
			t.Errorf("position rows %v, want %v", names, want)
		}
	})
}

// TestPartitionsKeepStreamOrder runs a partitioned processor in one
// process: each stream's events are handled in order, each once.
func TestPartitionsKeepStreamOrder(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 1000, 25, 4)
		rec := &recorder{}
		p := newProcessor(t, s, "ordered", rec, processing.Options{Partitions: 4, BatchSize: 30})
		// Migrate made the processor's own row, where its pause flag
		// lives, at 0, with its partitions' rows.
		rows, err := s.ListPositions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rows {
			names = append(names, r.Name)
		}
		if want := []string{"ordered", "ordered#0/4", "ordered#1/4", "ordered#2/4", "ordered#3/4"}; !slices.Equal(names, want) {
			t.Errorf("rows after Migrate: %v, want %v", names, want)
		}
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		all := testkit.MustCollect(t, "all", s.ReadAll(t.Context(), 0, 0))
		byPos := map[int64]event.Event{}
		for _, e := range all {
			byPos[e.Position] = e
		}
		got := rec.positions()
		if len(got) != len(all) {
			t.Errorf("handled %d events, want %d", len(got), len(all))
		}
		last := map[string]int64{}
		for _, pos := range got {
			e := byPos[pos]
			if e.Version != last[e.StreamID]+1 {
				t.Errorf("stream %s: version %d after %d", e.StreamID, e.Version, last[e.StreamID])
			}
			last[e.StreamID] = e.Version
		}
		st := p.Status()
		if len(st.Partitions) != 4 || st.Position != head {
			t.Errorf("Status() = %d partitions at %d, want 4 at %d", len(st.Partitions), st.Position, head)
		}
		for j, ps := range st.Partitions {
			if want := processing.PartitionName("ordered", j, 4); ps.Name != want || ps.Position != head {
				t.Errorf("partition %d: %s at %d, want %s at %d", j, ps.Name, ps.Position, want, head)
			}
		}
	})
}

// TestPartitionsRefuseUnpartitionedHistory: a processor that has run
// unpartitioned must be re-partitioned before it runs with partitions,
// and one that is partitioned does not run unpartitioned.
func TestPartitionsRefuseUnpartitionedHistory(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 50, 5, 5)
		plain := newProcessor(t, s, "p", &recorder{}, processing.Options{})
		stop := testkit.RunInBackground(t, plain)
		testkit.WaitFor(t, plain, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		parted, err := processing.New(s, "p", &recorder{}, processing.Options{Partitions: 3, Logger: testdb.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := parted.Migrate(t.Context()); !errors.Is(err, processing.ErrInvalid) {
			t.Fatalf("Migrate() with 3 partitions after running unpartitioned = %v, want ErrInvalid", err)
		}
		if err := processing.Repartition(t.Context(), s, "p", 3); err != nil {
			t.Fatal(err)
		}
		if err := parted.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate() after Repartition = %v", err)
		}
		if err := plain.Run(t.Context()); !errors.Is(err, processing.ErrInvalid) {
			t.Fatalf("Run() unpartitioned after Repartition = %v, want ErrInvalid", err)
		}
		rec := &recorder{}
		parted = newProcessor(t, s, "p", rec, processing.Options{Partitions: 3})
		testkit.RunInBackground(t, parted)
		more := testkit.Fill(t, s, 30, 5, 5)
		testkit.WaitFor(t, parted, more)
		if got := rec.positions(); len(got) != 30 || slices.Min(got) <= head {
			t.Errorf("handled %d events from %d, want the 30 after %d", len(got), slices.Min(got), head)
		}
	})
}

// TestPartitionOptions: invalid partition counts and unsupported
// combinations are refused.
func TestPartitionOptions(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	for _, o := range []processing.Options{{Partitions: -1}, {Partitions: processing.MaxPartitions + 1}, {Partitions: 2, Park: true}} {
		if _, err := processing.New(s, "p", &recorder{}, o); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	for _, k := range []int{0, -1, processing.MaxPartitions + 1} {
		if err := processing.Repartition(t.Context(), s, "p", k); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("Repartition(%d) = %v, want ErrInvalid", k, err)
		}
	}
}

var _ processing.RepartitionStore = (*eventstore.Store)(nil)

// TestPartitionsPause pauses a partitioned processor: every partition
// pauses, in this process and in another that reads the flag, and goes on
// when resumed.
func TestPartitionsPause(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 60, 6, 3)
		rec, other := &recorder{}, &recorder{}
		opts := processing.Options{Partitions: 3, PauseCheckInterval: 20 * time.Millisecond}
		p := newProcessor(t, s, "paused", rec, opts)
		q := newProcessor(t, s, "paused", other, opts) // another process's instance
		own := func(owner string) processing.Ownership {
			return processing.Ownership{Owner: owner, LeaseDuration: 3 * time.Second, HeartbeatInterval: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond}
		}
		startOwned(t, p, own("A"))
		startOwned(t, q, own("B"))
		testkit.WaitFor(t, p, head)
		if err := p.Pause(t.Context()); err != nil {
			t.Fatalf("Pause() = %v", err)
		}
		allPaused := func(x *processing.Processor, owner string) func() bool {
			return func() bool {
				for _, s := range x.Status().Partitions {
					if s.Owner == owner && s.State != processing.Standby && s.State != processing.Paused {
						return false
					}
				}
				return true
			}
		}
		testkit.Eventually(t, time.Minute, "A's partitions paused", allPaused(p, "A"))
		testkit.Eventually(t, time.Minute, "B's partitions paused", allPaused(q, "B"))
		before := len(rec.positions()) + len(other.positions())
		more := testkit.Fill(t, s, 30, 6, 3)
		if err := q.Resume(t.Context()); err != nil {
			t.Fatalf("Resume() = %v", err)
		}
		testkit.WaitFor(t, p, more)
		testkit.WaitFor(t, q, more)
		if got := len(rec.positions()) + len(other.positions()); got != before+30 {
			t.Errorf("handled %d events after the resume, want 30", got-before)
		}
	})
}

// TestPartitionsFromHead: the partitions of a processor that starts from
// the head all start at the head it was registered at.
func TestPartitionsFromHead(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 50, 5, 5)
		rec := &recorder{}
		p := newProcessor(t, s, "late", rec, processing.Options{Partitions: 3, Start: processing.FromHead()})
		more := testkit.Fill(t, s, 20, 5, 2)
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, more)
		got := rec.positions()
		slices.Sort(got)
		if len(got) != 20 || got[0] <= head {
			t.Errorf("handled %v, want the 20 events after %d", got, head)
		}
	})
}
