package processing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairnhq/cairn/event"
)

// EventHandler is a [Handler] that can also handle one event on its own,
// outside of a batch, which a processor with [Options.Concurrency] above 1
// needs: it then calls HandleEvent for the events of different streams at
// the same time (never for two events of one stream), and saves its
// position itself; HandleBatch is not called. HandleEvent must be safe for
// concurrent use. Its error fails the event (it is wrapped in an
// [*EventError] naming the event, unless it is one).
type EventHandler interface {
	Handler
	HandleEvent(ctx context.Context, e event.Event) error
}

// PerEvent lets the processor of t handle its events one at a time,
// outside of batches, each event's handler given the argument arg returns
// for it (a reactor's emitter), as [Options.Concurrency] above 1 needs: the
// handlers of events of different streams then run at the same time. A
// kind calls it when its handlers may run so — a reactor without state
// does; a projector, whose batch is one transaction, does not — before
// the processor first runs. arg must be safe for concurrent use.
func (t *Handlers[A]) PerEvent(arg func(e event.Event) A) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.perEvent = arg
}

// eventFunc returns the handling of one event by t's handlers, nil when
// its kind has not allowed it (PerEvent).
func (h kindHandler[A]) eventFunc() func(ctx context.Context, e event.Event) error {
	t := h.t
	t.mu.Lock()
	arg := t.perEvent
	t.mu.Unlock()
	if arg == nil {
		return nil
	}
	return func(ctx context.Context, e event.Event) error { return t.Handle(ctx, arg(e), e) }
}

// perEventer is implemented by the handlers of processors made by
// NewKind.
type perEventer interface {
	eventFunc() func(ctx context.Context, e event.Event) error
}

// concurrencyFor checks o.Concurrency against h, for New (which wraps
// ErrInvalid around it). A kind's handler is checked again at the start
// of each run, once its kind has said whether it handles events one at a
// time.
func (o Options) concurrencyFor(h Handler) error {
	if o.Concurrency <= 1 {
		return nil
	}
	switch h.(type) {
	case EventHandler, perEventer:
		return nil
	}
	return fmt.Errorf("concurrency %d: the handler (%T) handles whole batches only (it is no EventHandler)", o.Concurrency, h)
}

// perEvent returns the processor's handling of one event, with panics
// recovered and errors naming the event; nil when it has none.
func (p *Processor) perEvent() func(ctx context.Context, e event.Event) error {
	var fn func(ctx context.Context, e event.Event) error
	switch h := p.h.(type) {
	case perEventer:
		fn = h.eventFunc()
	case EventHandler:
		fn = h.HandleEvent
	}
	if fn == nil {
		return nil
	}
	return func(ctx context.Context, e event.Event) error {
		err := Guard(func() error { return fn(ctx, e) })
		if err == nil {
			return nil
		}
		if _, ok := errors.AsType[*EventError](err); ok {
			return err
		}
		return NewEventError(e, err)
	}
}

// startConcurrency checks, at the start of a run, that a processor with
// Concurrency above 1 can handle events one at a time.
func (p *Processor) startConcurrency() error {
	if p.opts.Concurrency > 1 && p.perEvent() == nil {
		return fmt.Errorf("%w: concurrency %d: the %s handles its events in whole batches only", ErrInvalid, p.opts.Concurrency, p.kind)
	}
	return nil
}

// concurrentSaveInterval is how often a concurrent run saves its position
// while events are being handled and no batch has completed since the
// last save: it bounds the work repeated after a crash to about this much.
const concurrentSaveInterval = time.Second

// saveTimeout bounds a concurrent run's last save, made after its context
// may have ended.
const saveTimeout = 5 * time.Second

// gaveUpError is the failure a concurrent run stops at: the error handler
// gave up on an event (and the processor does not park). The run's loop
// reports it as it is, without asking the error handler again.
type gaveUpError struct{ f Failure }

func (g *gaveUpError) Error() string { return g.f.Err.Error() }
func (g *gaveUpError) Unwrap() error { return g.f.Err }

// decided fills f from a failure the concurrent run has decided already
// (the error handler gave up), and reports whether err is one.
func (r *run) decided(err error, f *Failure) bool {
	g, ok := errors.AsType[*gaveUpError](err)
	if !ok {
		return false
	}
	*f = g.f
	f.Retry, f.Delay = false, 0
	r.attempt = f.Attempt
	return true
}

// conc is the state of one concurrent pass of a run (r.once with
// Options.Concurrency above 1): a reader that reads batches and hands each
// event to the queue of its stream; a goroutine per stream with events
// queued, which handles them in order, at most Concurrency of them
// handling at a time; and a committer that saves the contiguous prefix of
// handled events (the watermark).
type conc struct {
	r      *run
	ctx    context.Context // the run's: handlers get it
	stopCx context.Context // ends with ctx, or when the pass stops early
	stop   context.CancelFunc
	handle func(ctx context.Context, e event.Event) error
	policy ErrorHandler
	sem    chan struct{}
	limit  int           // most events read past the watermark
	kick   chan struct{} // a batch has completed: save
	report sync.Mutex    // one failure report at a time (OnError)
	wg     sync.WaitGroup

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced when the window shrinks
	streams     map[string]*streamQueue
	segs        []*segment // read batches not passed by the watermark
	outstanding int        // their events
	watermark   int64      // every event up to it is handled (or parked)
	saved       int64      // the position saved
	lastThrough int64      // how far the reader has read
	parked      []event.Parked
	parkedHere  map[string]int64 // stream → first event parked in this pass, until saved
	failing     int              // events failing now
	fatal       error
	saveFailed  bool
	progressed  bool
}

// segment is one batch as read, its events in order.
type segment struct {
	slots   []*slot
	next    int // the first slot not handled
	through int64
}

type slot struct {
	e    event.Event
	done bool
}

// streamQueue holds the events of one stream waiting for its goroutine.
type streamQueue struct {
	id     string
	events []*slot
}

// concurrently is r.once from pos on, with Options.Concurrency above 1.
func (r *run) concurrently(ctx context.Context, pos int64) error {
	p := r.p
	c := &conc{
		r: r, ctx: ctx, handle: p.perEvent(), policy: p.opts.ErrorHandler,
		sem:     make(chan struct{}, p.opts.Concurrency),
		limit:   max(p.opts.BatchSize, 4*p.opts.Concurrency),
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}), streams: make(map[string]*streamQueue),
		watermark: pos, saved: pos, lastThrough: pos, parkedHere: make(map[string]int64),
	}
	if p.pk.defaultPolicy {
		c.policy = ExponentialBackoff{MaxAttempts: DefaultParkAttempts}
	}
	c.stopCx, c.stop = context.WithCancel(ctx)
	defer c.stop()
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		c.commitLoop()
	}()

	readErr := c.read(pos)
	if readErr != nil && c.stopCx.Err() == nil {
		// Everything read before the failure is handled first: the
		// position then stands right before it.
		c.settle()
	}
	c.stop()
	c.wg.Wait()
	<-committed
	c.mu.Lock()
	fatal, saveFailed := c.fatal, c.saveFailed
	c.mu.Unlock()
	var saveErr error
	if !saveFailed {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
		saveErr = c.save(sctx)
		cancel()
	}
	if c.progressed && r.attempt > 0 {
		r.attempt = 0
	}
	switch {
	case fatal != nil:
		return fatal
	case saveErr != nil:
		return saveErr
	case ctx.Err() != nil:
		return ctx.Err()
	case readErr != nil:
		if c.saved == c.lastThrough {
			r.readFailed(readErr, c.saved)
		}
		return readErr
	}
	return ctx.Err()
}

// read reads batches from pos on and hands out their events, until the
// pass stops or a read fails.
func (c *conc) read(pos int64) error {
	for b, err := range c.r.p.subscribe(c.stopCx, pos, c.r.types) {
		if err != nil {
			return err
		}
		if err := c.dispatch(b); err != nil {
			return err
		}
		if !c.waitRoom() {
			return c.stopCx.Err()
		}
	}
	return c.stopCx.Err()
}

// dispatch queues the events of b to their streams' goroutines, or parks
// them behind their streams' parked events.
func (c *conc) dispatch(b event.Batch) error {
	r := c.r
	// Streams parked in this pass whose parking is saved are parked
	// streams like those of the store, which a retry or skip may clear.
	var behind map[string]int64
	if r.pk != nil {
		r.pk.cand = nil
		c.mu.Lock()
		for s, first := range c.parkedHere {
			if first <= c.saved {
				r.pk.streams[s] = first
				delete(c.parkedHere, s)
			}
		}
		c.mu.Unlock()
		for _, e := range b.Events {
			if _, parked := r.pk.streams[e.StreamID]; !parked {
				continue
			}
			if _, seen := behind[e.StreamID]; seen {
				continue
			}
			first, parked, err := r.recheck(c.stopCx, e.StreamID)
			if err != nil {
				return err
			}
			if parked {
				if behind == nil {
					behind = make(map[string]int64)
				}
				behind[e.StreamID] = first
			}
		}
	}
	seg := &segment{slots: make([]*slot, len(b.Events)), through: b.Through}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range b.Events {
		s := &slot{e: e}
		seg.slots[i] = s
		first, parked := behind[e.StreamID]
		if !parked {
			first, parked = c.parkedHere[e.StreamID]
		}
		if parked {
			c.parkBehind(s, first)
			continue
		}
		q := c.streams[e.StreamID]
		if q == nil {
			q = &streamQueue{id: e.StreamID}
			c.streams[e.StreamID] = q
			c.wg.Add(1)
			go c.runStream(q)
		}
		q.events = append(q.events, s)
	}
	c.segs = append(c.segs, seg)
	c.outstanding += len(seg.slots)
	c.lastThrough = b.Through
	c.advance()
	return nil
}

// parkBehind parks the event of s behind the parked event first of its
// stream; c.mu is held.
func (c *conc) parkBehind(s *slot, first int64) {
	e := s.e
	c.parked = append(c.parked, event.Parked{
		Processor: c.r.p.name, Position: e.Position, StreamID: e.StreamID, Version: e.Version, Type: e.Type, WaitsOn: first,
	})
	s.done = true
}

// waitRoom waits until fewer than c.limit events read are past the
// watermark; false when the pass stops first.
func (c *conc) waitRoom() bool {
	for {
		c.mu.Lock()
		if c.outstanding < c.limit {
			c.mu.Unlock()
			return true
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-c.stopCx.Done():
			return false
		case <-ch:
		}
	}
}

// settle waits until every event read is handled or parked, or the pass
// stops.
func (c *conc) settle() {
	for {
		c.mu.Lock()
		if c.outstanding == 0 {
			c.mu.Unlock()
			return
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-c.stopCx.Done():
			return
		case <-ch:
		}
	}
}

// advance moves the watermark over the handled events at the front of the
// window; c.mu is held.
func (c *conc) advance() {
	shrunk, completed := false, false
	for len(c.segs) > 0 {
		s := c.segs[0]
		for s.next < len(s.slots) && s.slots[s.next].done {
			s.next++
			c.outstanding--
			shrunk = true
		}
		if s.next < len(s.slots) {
			if s.next > 0 {
				c.watermark = max(c.watermark, s.slots[s.next-1].e.Position)
			}
			break
		}
		c.watermark = max(c.watermark, s.through)
		c.segs[0] = nil
		c.segs = c.segs[1:]
		completed = true
	}
	if shrunk {
		close(c.changed)
		c.changed = make(chan struct{})
	}
	if completed {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// runStream handles the queued events of q, in order, one at a time,
// until none is left or the pass stops.
func (c *conc) runStream(q *streamQueue) {
	defer c.wg.Done()
	held := c.acquire()
	defer func() {
		if held {
			<-c.sem
		}
	}()
	for {
		c.mu.Lock()
		if !held || len(q.events) == 0 || c.stopCx.Err() != nil {
			if c.streams[q.id] == q {
				delete(c.streams, q.id)
			}
			c.mu.Unlock()
			return
		}
		s := q.events[0]
		q.events[0] = nil
		q.events = q.events[1:]
		c.mu.Unlock()
		c.handleSlot(q, s, &held)
	}
}

// acquire takes a place among the Concurrency handling at a time; false
// when the pass stops first.
func (c *conc) acquire() bool {
	select {
	case c.sem <- struct{}{}:
		return true
	case <-c.stopCx.Done():
		return false
	}
}

// handleSlot handles the event of s, retrying it as the error handler
// says, and parks it (and the stream's later events) when the error
// handler gives up and the processor parks. It gives up its place while
// it waits to retry (held tells whether it has it).
func (c *conc) handleSlot(q *streamQueue, s *slot, held *bool) {
	p := c.r.p
	var since time.Time
	attempt := 0
	defer func() {
		if attempt > 0 {
			c.recovered()
		}
	}()
	for {
		p.pk.exclusive.RLock()
		err := c.handle(c.ctx, s.e)
		p.pk.exclusive.RUnlock()
		if err == nil {
			c.done(s)
			c.r.m.handledOne(c.ctx)
			return
		}
		if c.stopCx.Err() != nil {
			return // stopping: the event is left for the next run
		}
		attempt++
		if attempt == 1 {
			since = time.Now()
			c.mu.Lock()
			c.failing++
			c.mu.Unlock()
		}
		f := Failure{Processor: p.name, Position: s.e.Position, StreamID: s.e.StreamID, Type: s.e.Type, Attempt: attempt, Err: err}
		if errors.Is(err, ErrFenced) {
			c.fail(err)
			return
		}
		f.Delay, f.Retry = c.policy.Retry(attempt)
		if !f.Retry {
			if !p.opts.Park {
				c.fail(&gaveUpError{f: f})
				return
			}
			f.Parked = true
			c.park(q, s, f, since)
			c.reportFailure(f)
			return
		}
		c.reportFailure(f)
		<-c.sem
		*held = false
		t := time.NewTimer(f.Delay)
		select {
		case <-c.stopCx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if *held = c.acquire(); !*held {
			return
		}
	}
}

// done marks the event of s handled.
func (c *conc) done(s *slot) {
	c.mu.Lock()
	s.done = true
	c.advance()
	c.mu.Unlock()
}

// recovered notes that an event that failed is handled or parked, or left
// to the next run.
func (c *conc) recovered() {
	c.mu.Lock()
	c.failing--
	healthy := c.failing == 0 && c.stopCx.Err() == nil
	c.mu.Unlock()
	if healthy {
		c.r.p.update(func(s *Status) {
			if s.State == Retrying {
				s.State = Running
			}
			s.Attempts = 0
		})
	}
}

// park parks the event of s, which failed as f says since since, and the
// events of its stream queued behind it; they are recorded with the save
// that passes them.
func (c *conc) park(q *streamQueue, s *slot, f Failure, since time.Time) {
	e := s.e
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parked = append(c.parked, event.Parked{
		Processor: c.r.p.name, Position: e.Position, StreamID: e.StreamID, Version: e.Version, Type: e.Type,
		Error: parkedError(f.Err), Attempts: f.Attempt, FirstFailedAt: since,
	})
	c.parkedHere[e.StreamID] = e.Position
	s.done = true
	for _, w := range q.events {
		c.parkBehind(w, e.Position)
	}
	q.events = nil
	c.advance()
}

// reportFailure logs f, passes it to Options.OnError and shows it in the
// status, one failure at a time.
func (c *conc) reportFailure(f Failure) {
	p := c.r.p
	c.report.Lock()
	defer c.report.Unlock()
	p.logFailure(c.ctx, c.r.log, f)
	if p.opts.OnError != nil {
		p.opts.OnError(f)
	}
	c.r.m.failed(c.ctx, f)
	p.update(func(s *Status) {
		if f.Retry {
			s.State = Retrying
		}
		s.Attempts, s.LastError = f.Attempt, f.Err
	})
}

// fail stops the pass with err (the first such error wins).
func (c *conc) fail(err error) {
	c.mu.Lock()
	if c.fatal == nil {
		c.fatal = err
	}
	c.mu.Unlock()
	c.stop()
}

// commitLoop saves the watermark each time a batch completes, and every
// concurrentSaveInterval while it moves, until the pass stops.
func (c *conc) commitLoop() {
	t := time.NewTicker(concurrentSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stopCx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		// Not under stopCx: a save cut off half-way would leave the
		// position unknown to the last save of the pass.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), saveTimeout)
		err := c.save(sctx)
		cancel()
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// save saves the watermark, with the parked events up to it, if it has
// moved since the last save. After a failure nothing is saved again in the
// pass (c.saveFailed).
func (c *conc) save(ctx context.Context) (err error) {
	r, p := c.r, c.r.p
	c.mu.Lock()
	from, to := c.saved, c.watermark
	if to <= from || c.saveFailed {
		c.mu.Unlock()
		return nil
	}
	slices.SortFunc(c.parked, func(a, b event.Parked) int { return cmp.Compare(a.Position, b.Position) })
	n := 0
	for n < len(c.parked) && c.parked[n].Position <= to {
		n++
	}
	rows := slices.Clone(c.parked[:n])
	c.mu.Unlock()
	var ok bool
	if len(rows) > 0 {
		ok, err = p.pk.store.Park(ctx, p.name, r.epoch, from, to, rows)
	} else {
		ok, err = p.store.SavePosition(ctx, p.name, r.epoch, from, to)
	}
	if err == nil && !ok {
		err = fmt.Errorf("save position %d: %w", to, ErrFenced)
	}
	c.mu.Lock()
	if err != nil {
		c.saveFailed = true
	} else {
		c.saved, c.progressed = to, true
		// Rows added since are past to: they stay.
		c.parked = slices.Delete(c.parked, 0, n)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	p.update(func(s *Status) { s.Position = max(s.Position, to) })
	for _, row := range rows {
		if row.WaitsOn == 0 {
			p.addParked(1, row.FirstFailedAt)
			continue
		}
		r.log.WarnContext(ctx, "event processor parked an event behind its stream's parked events",
			"position", row.Position, "stream", row.StreamID, "type", row.Type, "waits_on", row.WaitsOn)
		p.addParked(1, time.Now())
	}
	return nil
}
