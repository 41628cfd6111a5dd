package projector_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// appliedCounts returns how many times each position was projected.
func appliedCounts(t testing.TB, db *gorm.DB, table string) map[int64]int {
	t.Helper()
	var rows []struct {
		Position int64
		N        int
	}
	if err := db.Raw(`SELECT position, COUNT(*) AS n FROM ` + table + `_applied GROUP BY position`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := make(map[int64]int, len(rows))
	for _, r := range rows {
		out[r.Position] = r.N
	}
	return out
}

// TestRepartitionNeitherSkipsNorRepeats stops a partitioned projector
// (or an unpartitioned one) with its partitions at different positions,
// re-partitions it, and runs it again: every deposit and withdrawal is
// projected exactly once, and the projection equals the fold of the
// events.
func TestRepartitionNeitherSkipsNorRepeats(t *testing.T) {
	for _, c := range []struct{ from, to int }{{2, 4}, {1, 3}, {2, 3}, {4, 2}, {3, 1}} {
		t.Run(fmt.Sprintf("%d_to_%d", c.from, c.to), func(t *testing.T) {
			testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
				db := testdb.New(t, kind)
				s := testkit.DomainStore(t, db.Gorm)
				head := testkit.Fill(t, s, 1500, 40, 5)
				stopAt := head / 3
				last := c.from - 1
				errStop := errors.New("the last partition stops here")
				p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
					Owner: "first",
					Processing: processing.Options{
						Partitions:   c.from,
						BatchSize:    50,
						ErrorHandler: processing.NoRetry{},
					},
					Fail: func(e event.Event) error {
						if event.PartitionOf(e.StreamID, c.from) == last && e.Position > stopAt {
							return errStop
						}
						return nil
					},
				})
				stop := testkit.RunInBackground(t, p)
				testkit.Eventually(t, time.Minute, "the last partition failed, the others at the head", func() bool {
					st := p.Status()
					if c.from == 1 {
						return st.State == processing.Failed
					}
					for j, ps := range st.Partitions {
						if j == last && ps.State != processing.Failed || j != last && ps.Position != head {
							return false
						}
					}
					return true
				})
				if err := stop(); !errors.Is(err, errStop) {
					t.Fatalf("Run() = %v, want %v", err, errStop)
				}
				if err := processing.Repartition(t.Context(), s, "accounts", c.to); err != nil {
					t.Fatalf("Repartition(%d) = %v", c.to, err)
				}
				if c.from > 1 && c.to%c.from != 0 {
					// The new partitions skip what the old ones handled:
					// re-partitioning again must wait until they passed it.
					if err := processing.Repartition(t.Context(), s, "accounts", c.from); !errors.Is(err, processing.ErrInvalid) {
						t.Fatalf("Repartition(%d) again at once = %v, want ErrInvalid", c.from, err)
					}
				}
				// The old layout is refused.
				old, err := projector.New(s, "accounts", projector.Options{Processing: processing.Options{Partitions: c.from}})
				if err != nil {
					t.Fatal(err)
				}
				projector.MustOn(old, func(_ context.Context, _ *gorm.DB, _ event.Event, _ testkit.Noted) error { return nil })
				if err := old.Run(t.Context()); !errors.Is(err, processing.ErrInvalid) {
					t.Fatalf("Run() with %d partitions after re-partitioning to %d = %v, want ErrInvalid", c.from, c.to, err)
				}

				p2 := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
					Owner:      "second",
					Processing: processing.Options{Partitions: c.to, BatchSize: 50, ErrorHandler: processing.NoRetry{}},
				})
				testkit.RunInBackground(t, p2)
				testkit.WaitFor(t, p2, head)
				// And live events after it.
				more := testkit.Fill(t, s, 200, 7, 3)
				testkit.WaitFor(t, p2, more)
				if st := p2.Status(); len(st.Partitions) != max(c.to, 1) && c.to > 1 {
					t.Errorf("Status().Partitions = %d, want %d", len(st.Partitions), c.to)
				}

				counts := appliedCounts(t, db.Gorm, "accounts")
				all := testkit.MustCollect(t, "all", s.ReadAll(t.Context(), 0, 0))
				n := 0
				for _, e := range all {
					if _, ok := e.Data.(testkit.Noted); ok {
						continue
					}
					n++
					if counts[e.Position] != 1 {
						t.Errorf("event at %d (stream %s) projected %d times, want 1", e.Position, e.StreamID, counts[e.Position])
					}
				}
				if len(counts) != n {
					t.Errorf("%d positions projected, want %d", len(counts), n)
				}
				checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
			})
		})
	}
}

// TestPartitionedVersionedRefused: a versioned projector is not
// partitioned.
func TestPartitionedVersionedRefused(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	_, err := projector.New(s, "accounts", projector.Options{Version: 1, Processing: processing.Options{Partitions: 2}})
	if !errors.Is(err, processing.ErrInvalid) {
		t.Fatalf("New(versioned, 2 partitions) = %v, want ErrInvalid", err)
	}
}
