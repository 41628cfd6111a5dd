package runner

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/processing"
)

// distancer is implemented by a store that says how many events lie
// between two positions, which subtraction cannot tell when positions lie
// far apart (eventstore's OrderingXID, where consecutive events are often
// 65,536 or more positions apart). The runner then reports lags and rates
// in events through it. *eventstore.Store implements it.
type distancer interface {
	// Distance returns how many events a reader at from reads to reach
	// to.
	Distance(ctx context.Context, from, to int64) (int64, error)
}

// countLags reads every processor's status and measures, through the
// store's Distance, its lag behind head and how far it moved since the
// sampler last looked. It runs without r.mu held (it queries the store)
// and returns the statuses, for statusOf to report with the lags that go
// with them; nil when the store has no Distance.
func (r *Runner) countLags(ctx context.Context, head int64) []processing.Status {
	d, ok := r.store.(distancer)
	if !ok {
		return nil
	}
	out := make([]processing.Status, len(r.procs))
	for i, pr := range r.procs {
		ps := pr.p.Status()
		out[i] = ps
		r.mu.Lock()
		last := pr.lastPos
		r.mu.Unlock()
		lag, err := d.Distance(ctx, ps.Position, max(head, ps.Position))
		moved, merr := d.Distance(ctx, last, ps.Position)
		r.mu.Lock()
		pr.counted = err == nil && merr == nil
		pr.lag, pr.countedAt, pr.moved, pr.movedFrom = lag, ps.Position, moved, last
		r.mu.Unlock()
	}
	return out
}

// statusNow returns the status of the i-th processor: the one countLags
// read, or a fresh one.
func statusNow(counted []processing.Status, i int, pr *proc) processing.Status {
	if counted != nil {
		return counted[i]
	}
	return pr.p.Status()
}

// lagOf returns the lag of pr at position pos behind head, with r.mu
// held: counted by countLags, or by subtraction.
func (pr *proc) lagOf(pos, head int64) int64 {
	if pr.counted && pos == pr.countedAt {
		return pr.lag
	}
	return head - pos
}

// progress returns how many events pr handled since the sampler last
// looked, now that it is at pos; with r.mu held.
func (pr *proc) progress(pos int64) int64 {
	if pr.counted && pr.movedFrom == pr.lastPos && pr.countedAt == pos {
		return pr.moved
	}
	return max(pos-pr.lastPos, 0)
}

// sampleRate records that pr is at pos at now and returns its rate over
// the sampler's window, with r.mu held: in events counted by countLags
// when the store has a Distance, in positions otherwise.
func (pr *proc) sampleRate(now time.Time, pos int64) float64 {
	if !pr.counted {
		pr.lastPos = pos
		return pr.rates.add(now, pos)
	}
	pr.handled += pr.progress(pos)
	pr.lastPos = pos
	return pr.rates.add(now, pr.handled)
}
