package runner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// escaping is a runner.Processor whose run panics outside any handler,
// once its position row exists.
type escaping struct {
	store processing.Positions
}

func (*escaping) Name() string              { return "escaping" }
func (*escaping) Status() processing.Status { return processing.Status{Name: "escaping"} }
func (p *escaping) RunOwned(ctx context.Context, o processing.Ownership) error {
	if _, _, err := p.store.LoadPosition(ctx, "escaping"); err != nil {
		return err
	}
	panic("escaped")
}

// A processor whose run panics outside its handlers has its error recorded
// in the store, where every process sees it (the processor records its own
// failures: see processing's TestWaitForFailedProcessor).
func TestFailureRecorded(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t)}, &escaping{store: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "escaped") {
			t.Fatalf("Run() = %v, want the panic", err)
		}
		rows, err := s.ListPositions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || !strings.Contains(rows[0].LastError, "escaped") || rows[0].FailedAt.IsZero() {
			t.Errorf("ListPositions = %+v, want the panic recorded", rows)
		}
	})
}
