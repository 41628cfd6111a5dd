package processing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
)

type Deposited struct {
	Amount int `json:"amount"`
}

type Noted struct {
	Text string `json:"text"`
}

func newRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	event.MustRegister[Noted](reg, "noted")
	return reg
}

func newStore(t testing.TB, db *gorm.DB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.New(db, newRegistry(), eventstore.Options{Logger: testdb.Logger(t), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("eventstore.New() = %v, want nil", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return s
}

func appendEvents(t testing.TB, s *eventstore.Store, stream string, data ...any) []event.Event {
	t.Helper()
	evs, err := s.Append(t.Context(), stream, event.Any, data)
	if err != nil {
		t.Fatalf("Append(%s) = %v", stream, err)
	}
	return evs
}

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

// start runs p until the test ends and returns a function that stops it
// and returns Run's result.
func start(t testing.TB, p *processing.Processor) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t testing.TB, p *processing.Processor, pos int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, pos); err != nil {
		t.Fatalf("WaitFor(%d) = %v; status %+v", pos, err, p.Status())
	}
}
