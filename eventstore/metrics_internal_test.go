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
