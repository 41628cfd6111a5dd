package processing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
)

// recorder is a processing.Handler that records the positions it handled
// and fails as fail says (nil: never). It saves its position through the
// store after each batch.
type recorder struct {
	types []string
	fail  func(e event.Event) error

	mu      sync.Mutex
	handled []int64
	times   []time.Time // of the calls to fail
}

func (r *recorder) Types() []string { return r.types }

func (r *recorder) HandleBatch(ctx context.Context, b event.Batch, cp processing.Checkpoint) (int64, error) {
	for _, e := range b.Events {
		if r.fail != nil {
			r.mu.Lock()
			r.times = append(r.times, time.Now())
			r.mu.Unlock()
			if err := r.fail(e); err != nil {
				return 0, processing.NewEventError(e, err)
			}
		}
		r.mu.Lock()
		r.handled = append(r.handled, e.Position)
		r.mu.Unlock()
	}
	if err := cp.Save(ctx, b.Through); err != nil {
		return 0, err
	}
	return b.Through, nil
}

func (r *recorder) positions() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.handled...)
}

func newProcessor(t testing.TB, s *eventstore.Store, name string, h processing.Handler, opts processing.Options) *processing.Processor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testdb.Logger(t)
	}
	p, err := processing.New(s, name, h, opts)
	if err != nil {
		t.Fatalf("processing.New() = %v", err)
	}
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	return p
}
