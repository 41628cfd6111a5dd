package processing_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// Unregistered is an event type no registry of the tests knows.
type Unregistered struct{}

// newKind returns a processor of kind "test" whose handlers each get the
// batch's through position, and which saves after every batch.
func newKind(t testing.TB, s processing.TypedStore, name string) (*processing.Processor, *processing.Handlers[int64]) {
	t.Helper()
	var h *processing.Handlers[int64]
	handle := func(ctx context.Context, b event.Batch, cp processing.Checkpoint) (int64, error) {
		for _, e := range b.Events {
			if err := h.Handle(ctx, b.Through, e); err != nil {
				return 0, err
			}
		}
		return b.Through, cp.Save(ctx, b.Through)
	}
	p, h, err := processing.NewKind[int64]("test", s, name, handle, processing.Options{Logger: testdb.Logger(t), ErrorHandler: processing.NoRetry{}})
	if err != nil {
		t.Fatalf("NewKind() = %v", err)
	}
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	return p, h
}

func TestKindRegistration(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	p, h := newKind(t, s, "kind")
	if got := p.Kind(); got != "test" {
		t.Errorf("Kind() = %q, want test", got)
	}
	noop := func(context.Context, int64, event.Event, testkit.Deposited) error { return nil }

	if err := p.Run(t.Context()); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("Run() with no handlers = %v, want ErrInvalid", err)
	}
	// A Run, even one that fails, closes registration.
	if err := processing.On(h, noop); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("On() after Run = %v, want ErrInvalid", err)
	}

	p2, h2 := newKind(t, s, "kind-2")
	if err := processing.On(h2, func(context.Context, int64, event.Event, Unregistered) error { return nil }); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("On(unregistered type) = %v, want ErrInvalid", err)
	}
	if err := processing.On(h2, noop); err != nil {
		t.Fatalf("On() = %v, want nil", err)
	}
	if err := processing.On(h2, noop); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("On() twice for one type = %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p2.Run(ctx); err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	if err := processing.On(h2, func(context.Context, int64, event.Event, testkit.Noted) error { return nil }); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("On() after Run = %v, want ErrInvalid", err)
	}
}

// TestKindHandles runs a kind's typed handlers: each gets its event's data
// as its Go type and the kind's argument, only the types with a handler
// are read, and a handler's panic stops the processor with a *PanicError
// in an *EventError naming the event.
func TestKindHandles(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		evs := testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Noted{Text: "n"}, &testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: -1}})
		p, h := newKind(t, s, "kind")
		var mu sync.Mutex
		var got []int
		err := processing.On(h, func(ctx context.Context, through int64, e event.Event, d testkit.Deposited) error {
			if through < e.Position {
				t.Errorf("handler got through %d for event %d", through, e.Position)
			}
			if d.Amount < 0 {
				panic("negative deposit")
			}
			mu.Lock()
			got = append(got, d.Amount)
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = p.Run(t.Context())
		pe, ok := errors.AsType[*processing.PanicError](err)
		if !ok || pe.Value != "negative deposit" || len(pe.Stack) == 0 {
			t.Fatalf("Run() = %v, want a *PanicError", err)
		}
		ee, ok := errors.AsType[*processing.EventError](err)
		if !ok || ee.Position != evs[3].Position || ee.Type != "deposited" {
			t.Errorf("Run() = %v, want an *EventError at %d", err, evs[3].Position)
		}
		if want := []int{1, 2}; !slices.Equal(got, want) {
			t.Errorf("handled %v, want %v", got, want)
		}
	})
}

// TestGuard: Guard returns fn's error as it is, and a panic as a bare
// *PanicError.
func TestGuard(t *testing.T) {
	boom := errors.New("boom")
	if err := processing.Guard(func() error { return boom }); err != boom {
		t.Errorf("Guard(return boom) = %v, want boom", err)
	}
	err := processing.Guard(func() error { panic(boom) })
	pe, ok := err.(*processing.PanicError)
	if !ok || pe.Value != boom || !errors.Is(err, boom) {
		t.Errorf("Guard(panic(boom)) = %#v, want a *PanicError wrapping boom", err)
	}
}
