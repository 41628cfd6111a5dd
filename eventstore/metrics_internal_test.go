package eventstore

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
)

// TestMetricsNoopAllocs checks that measuring an append, a group commit
// and a read allocates nothing when nobody collects the metrics: with the
// API's no-op provider, and with the global provider left unset (the
// default of Options.MeterProvider).
func TestMetricsNoopAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		mp   func() *storeMetrics
	}{
		{"noop", func() *storeMetrics { m, _ := newStoreMetrics(noop.NewMeterProvider(), "sqlite"); return m }},
		{"global", func() *storeMetrics { m, _ := newStoreMetrics(nil, "sqlite"); return m }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.mp()
			if m == nil {
				t.Fatal("newStoreMetrics() failed")
			}
			ctx := context.Background()
			live := []*request{{events: make([]pendingEvent, 2)}, {events: make([]pendingEvent, 1)}}
			allocs := testing.AllocsPerRun(1000, func() {
				start := m.startAppend(ctx)
				m.committed(ctx, live)
				m.appended(ctx, start, 3, nil)
				m.appendedTx(ctx, start, 3, nil)
				rs := m.startRead(ctx)
				m.readDone(ctx, readOfBatch, rs, 100, nil)
			})
			if allocs != 0 {
				t.Errorf("allocations per append and read = %v, want 0", allocs)
			}
		})
	}
}

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fail("append", "s", "", invalid("empty")), "invalid_argument"},
		{fail("append", "s", "", &OutcomeUnknownError{Err: context.DeadlineExceeded}), "outcome_unknown"},
		{fail("append", "s", "", &unavailableError{context.DeadlineExceeded}), "unavailable"},
		{fail("append", "s", "", context.Canceled), "canceled"},
		{fail("append", "s", "", context.DeadlineExceeded), "deadline_exceeded"},
		{fail("append", "s", "", errRetryBatch), "unavailable"},
	} {
		if got := errorType(c.err); got != c.want {
			t.Errorf("errorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// BenchmarkMetricsNoop measures what the metrics add to one append (its
// group commit included) and to one read query when nobody collects them:
// the cost to compare with that of an append or a read, whatever the
// load of the machine.
func BenchmarkMetricsNoop(b *testing.B) {
	for _, c := range []struct {
		name string
		mp   func() (*storeMetrics, error)
	}{
		{"noop", func() (*storeMetrics, error) { return newStoreMetrics(noop.NewMeterProvider(), "sqlite") }},
		{"global", func() (*storeMetrics, error) { return newStoreMetrics(nil, "sqlite") }},
	} {
		m, err := c.mp()
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		live := []*request{{events: make([]pendingEvent, 1)}}
		b.Run(c.name+"/append", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				start := m.startAppend(ctx)
				m.committed(ctx, live)
				m.appended(ctx, start, 1, nil)
			}
		})
		b.Run(c.name+"/read", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				start := m.startRead(ctx)
				m.readDone(ctx, readOfStream, start, 100, nil)
			}
		})
	}
}
