package eventstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestPartitionLayout: a processor's number of partitions is recorded
// once, never over a history of running unpartitioned, and replaced only
// by a re-partitioning from the recorded layout, which fences the old rows.
func TestPartitionLayout(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		_, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t)})
		if k, err := s.Partitions(ctx, "p"); err != nil || k != 0 {
			t.Fatalf("Partitions of a new processor = %d, %v; want 0", k, err)
		}
		for _, try := range []int{3, 4} {
			if k, err := s.InitPartitions(ctx, "p", try); err != nil || k != 3 {
				t.Errorf("InitPartitions(%d) = %d, %v; want 3", try, k, err)
			}
		}
		if _, err := s.InitPartitions(ctx, "p", 0); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("InitPartitions(0) = %v, want ErrInvalidArgument", err)
		}
		// A processor that has moved unpartitioned is not partitioned so.
		if _, err := s.CreatePosition(ctx, "q", 5); err != nil {
			t.Fatal(err)
		}
		if k, err := s.InitPartitions(ctx, "q", 2); err != nil || k != 1 {
			t.Errorf("InitPartitions of a processor at 5 = %d, %v; want 1", k, err)
		}

		// Re-partition q from 1 to 2: the plan sees its row, fenced.
		_, epoch, err := s.LoadPosition(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		plan := func(old []event.PartitionRow) ([]event.PartitionRow, error) {
			if len(old) != 1 || old[0].Name != "q" || old[0].Position != 5 || old[0].Owner != "" {
				t.Errorf("plan got %+v, want q at 5", old)
			}
			return []event.PartitionRow{{Name: "q#0/2", Position: 5}, {Name: "q#1/2", Position: 3, Handled: "x"}}, nil
		}
		if err := s.Repartition(ctx, "q", 2, []string{"q#0/2", "q#1/2"}, 3, plan); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Repartition from the wrong layout = %v, want ErrInvalidArgument", err)
		}
		if err := s.Repartition(ctx, "q", 1, []string{"q"}, 2, plan); err != nil {
			t.Fatalf("Repartition = %v", err)
		}
		if saved, err := s.SavePosition(ctx, "q", epoch, 5, 6); err != nil || saved {
			t.Errorf("SavePosition on the old row = %v, %v; want fenced", saved, err)
		}
		if k, err := s.Partitions(ctx, "q"); err != nil || k != 2 {
			t.Errorf("Partitions after Repartition = %d, %v; want 2", k, err)
		}
		if h, err := s.PartitionHandled(ctx, "q#1/2"); err != nil || h != "x" {
			t.Errorf("PartitionHandled = %q, %v; want x", h, err)
		}
		if pos, _, err := s.LoadPosition(ctx, "q#1/2"); err != nil || pos != 3 {
			t.Errorf("LoadPosition(q#1/2) = %d, %v; want 3", pos, err)
		}
		// A reset starts from 0 with nothing to skip.
		if err := s.ResetPosition(ctx, "q#1/2"); err != nil {
			t.Fatal(err)
		}
		if h, err := s.PartitionHandled(ctx, "q#1/2"); err != nil || h != "" {
			t.Errorf("PartitionHandled after a reset = %q, %v; want none", h, err)
		}
		// A plan's error rolls everything back.
		boom := errors.New("boom")
		if err := s.Repartition(ctx, "q", 2, []string{"q#0/2", "q#1/2"}, 1, func([]event.PartitionRow) ([]event.PartitionRow, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("Repartition with a failing plan = %v, want %v", err, boom)
		}
		if k, err := s.Partitions(ctx, "q"); err != nil || k != 2 {
			t.Errorf("Partitions after a failed Repartition = %d, %v; want 2", k, err)
		}
	})
}

// TestMembers: the members of a partitioned processor, each until its
// expiry by the database's clock.
func TestMembers(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		_, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t)})
		for _, o := range []string{"b", "a"} {
			if _, err := s.JoinMembers(ctx, "p", o, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.JoinMembers(ctx, "other", "c", time.Minute)
		if err != nil || !slices.Equal(got, []string{"c"}) {
			t.Errorf("members of another processor = %v, %v; want [c]", got, err)
		}
		if err := s.LeaveMembers(ctx, "p", "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinMembers(ctx, "p", "z", time.Millisecond); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := s.JoinMembers(ctx, "p", "a", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(got, []string{"a"}) {
				break
			}
			if !slices.Equal(got, []string{"a", "z"}) || time.Now().After(deadline) {
				t.Fatalf("members = %v, want [a] once z's millisecond has passed", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
