package processing_test

import (
	"errors"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// TestMetrics: a processor counts the events it handled and its failed
// attempts, by what it did next (retry, then park).
func TestMetrics(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		var all []event.Event
		for _, stream := range []string{"good", "bad", "good", "good"} {
			all = append(all, testkit.MustAppend(t, s, stream, event.Any, []any{testkit.Deposited{Amount: 1}})...)
		}
		poison := all[1]
		rec := &prefixRecorder{fail: func(e event.Event) error {
			if e.Position == poison.Position {
				return errors.New("boom")
			}
			return nil
		}}
		m := testkit.NewMetrics(t)
		p := newProcessor(t, s, "counted", rec, processing.Options{
			Park:          true,
			ErrorHandler:  processing.ConstantRetry{MaxAttempts: 3},
			MeterProvider: m.Provider,
		})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, all[len(all)-1].Position)

		got := m.Collect(t)
		attrs := []string{"cairn.processor.name", "counted", "cairn.processor.kind", "processor"}
		if v, _ := got.Value("cairn.processor.events", attrs...); v != 3 {
			t.Errorf("cairn.processor.events = %v, want 3 (all but the parked one)", v)
		}
		for action, want := range map[string]float64{"retry": 2, "park": 1, "stop": 0} {
			if v, _ := got.Value("cairn.processor.failures", append(attrs, "cairn.processor.action", action)...); v != want {
				t.Errorf("cairn.processor.failures{action=%s} = %v, want %v", action, v, want)
			}
		}
	})
}
