package processing

import (
	"math"
	"math/rand/v2"
	"time"
)

// ErrorHandler decides what a processor does after its handling of an
// event failed: retry after a delay, or stop. Attempt counts the failures of
// the same event in a row, starting at 1; it starts again at 1 after the
// processor has handled a batch successfully.
//
// Implementations must be safe for concurrent use; the ones in this package
// are plain values.
type ErrorHandler interface {
	// Retry returns how long to wait before the next attempt, and false
	// when the processor should stop instead.
	Retry(attempt int) (delay time.Duration, ok bool)
}

var (
	_ ErrorHandler = NoRetry{}
	_ ErrorHandler = ConstantRetry{}
	_ ErrorHandler = ExponentialBackoff{}
)

// NoRetry stops the processor at its first failure: its state becomes
// [Failed], its last error is kept, and Run returns the error. Other
// processors go on.
type NoRetry struct{}

// Retry always returns false.
func (NoRetry) Retry(int) (time.Duration, bool) { return 0, false }

// ConstantRetry retries after the same delay every time.
type ConstantRetry struct {
	// Delay is the wait before each retry; zero retries at once.
	Delay time.Duration
	// MaxAttempts is the most attempts at one event, the first included:
	// after that many failures in a row the processor stops. Zero means
	// no limit.
	MaxAttempts int
}

// Retry returns Delay until MaxAttempts is reached.
func (c ConstantRetry) Retry(attempt int) (time.Duration, bool) {
	if c.MaxAttempts > 0 && attempt >= c.MaxAttempts {
		return 0, false
	}
	return max(c.Delay, 0), true
}

// Defaults of [ExponentialBackoff]'s zero fields.
const (
	DefaultInitialDelay = 100 * time.Millisecond
	DefaultMaxDelay     = time.Minute
	DefaultMultiplier   = 2.0
)

// ExponentialBackoff retries after a delay that grows by Multiplier after
// each failure of the same event, up to Max. Since the attempt count starts
// again after a success, so does the delay. The zero value is usable:
// 100ms, 200ms, 400ms, … up to a minute, without jitter, without limit.
type ExponentialBackoff struct {
	// Initial is the delay before the first retry; zero means
	// DefaultInitialDelay.
	Initial time.Duration
	// Multiplier scales the delay after each failure; values below 1
	// (zero included) mean DefaultMultiplier.
	Multiplier float64
	// Max caps the delay; zero means DefaultMaxDelay.
	Max time.Duration
	// Jitter, between 0 and 1, takes a random part of up to that
	// fraction off each delay, so that processors failing together do
	// not retry in lock step. Values outside [0, 1] are clamped.
	Jitter float64
	// MaxAttempts is the most attempts at one event, the first included;
	// zero means no limit.
	MaxAttempts int
}

// Retry returns Initial·Multiplier^(attempt-1), capped at Max, less the
// jitter, until MaxAttempts is reached.
func (b ExponentialBackoff) Retry(attempt int) (time.Duration, bool) {
	if b.MaxAttempts > 0 && attempt >= b.MaxAttempts {
		return 0, false
	}
	initial, mult, capd := b.Initial, b.Multiplier, b.Max
	if initial <= 0 {
		initial = DefaultInitialDelay
	}
	if mult < 1 {
		mult = DefaultMultiplier
	}
	if capd <= 0 {
		capd = DefaultMaxDelay
	}
	d := float64(initial) * math.Pow(mult, float64(max(attempt, 1)-1))
	if d > float64(capd) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(capd)
	}
	if j := min(max(b.Jitter, 0), 1); j > 0 {
		d -= d * j * rand.Float64()
	}
	return time.Duration(d), true
}
