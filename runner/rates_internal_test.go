package runner

import (
	"testing"
	"time"
)

func TestRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var rs rates
	if got := rs.add(t0, 0); got != 0 {
		t.Errorf("first sample: rate %v, want 0", got)
	}
	// A batch of 100 every 2 s, sampled every second: the rate stays at
	// 50/s once the window spans batches, never 0 between two of them.
	pos := int64(0)
	for i := 1; i <= 30; i++ {
		if i%2 == 0 {
			pos += 100
		}
		got := rs.add(t0.Add(time.Duration(i)*time.Second), pos)
		if i >= 4 && (got < 40 || got > 60) {
			t.Errorf("after %ds: rate %v, want about 50", i, got)
		}
	}
	if n := len(rs.samples); n > int(rateWindow/time.Second)+2 {
		t.Errorf("%d samples kept, want at most a window's", n)
	}
	// A reset starts again.
	if got := rs.add(t0.Add(31*time.Second), 0); got != 0 {
		t.Errorf("after a reset: rate %v, want 0", got)
	}
}
