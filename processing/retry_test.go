package processing_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/processing"
)

func TestErrorHandlers(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		eh   processing.ErrorHandler
		want []time.Duration // delays for attempts 1, 2, …; -1: stop
	}{
		{"no retry", processing.NoRetry{}, []time.Duration{-1}},
		{"constant without limit", processing.ConstantRetry{Delay: 5 * ms}, []time.Duration{5 * ms, 5 * ms, 5 * ms, 5 * ms}},
		{"constant with 3 attempts", processing.ConstantRetry{Delay: 5 * ms, MaxAttempts: 3}, []time.Duration{5 * ms, 5 * ms, -1}},
		{"exponential defaults", processing.ExponentialBackoff{}, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms}},
		{"exponential capped", processing.ExponentialBackoff{Initial: 10 * ms, Multiplier: 3, Max: 50 * ms},
			[]time.Duration{10 * ms, 30 * ms, 50 * ms, 50 * ms}},
		{"exponential with 4 attempts", processing.ExponentialBackoff{Initial: ms, MaxAttempts: 4}, []time.Duration{ms, 2 * ms, 4 * ms, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				d, ok := tc.eh.Retry(i + 1)
				if want < 0 {
					if ok {
						t.Errorf("Retry(%d) = %v, true; want stop", i+1, d)
					}
					continue
				}
				if !ok || d != want {
					t.Errorf("Retry(%d) = %v, %v; want %v, true", i+1, d, ok, want)
				}
			}
		})
	}
}

func TestExponentialBackoffJitter(t *testing.T) {
	b := processing.ExponentialBackoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for range 100 {
		d, ok := b.Retry(3)
		if !ok || d < 200*time.Millisecond || d > 400*time.Millisecond {
			t.Fatalf("Retry(3) = %v, %v; want between 200ms and 400ms", d, ok)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("100 jittered delays took only %d values", len(seen))
	}
	if d, _ := b.Retry(100); d > time.Second || d < 500*time.Millisecond {
		t.Errorf("Retry(100) = %v, want the cap less at most half", d)
	}
}
