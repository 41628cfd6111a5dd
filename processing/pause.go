package processing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultPauseCheckInterval is how often a running processor reads its
// pause flag, unless [Options.PauseCheckInterval] says otherwise.
const DefaultPauseCheckInterval = time.Second

// errPaused ends the part of a run that handles events, when the
// processor is paused.
var errPaused = errors.New("processing: paused")

// pauseStore is what pausing a processor needs of its store: the pause
// flag in the processor's row, which every process sharing the store
// sees. *eventstore.Store implements it.
type pauseStore interface {
	// SetPaused records whether the processor is paused; it does nothing
	// when the processor has no row.
	SetPaused(ctx context.Context, name string, paused bool) error
	// Paused reads the flag; false when the processor has no row.
	Paused(ctx context.Context, name string) (bool, error)
}

// pauseState is a processor's pause flag as this process knows it, and
// the part of its run that a pause interrupts.
type pauseState struct {
	mu     sync.Mutex
	paused bool
	gen    uint64 // counts the changes made in this process
	// recording counts the Pause calls of this process writing the flag
	// to the store: until they are done, what the store says is out of
	// date.
	recording int
	changed   chan struct{} // closed at each change of paused or handling; nil until needed
	// handling: the run is reading and handling events, under a context
	// that interrupt cancels.
	handling  bool
	interrupt context.CancelCauseFunc
}

// notify wakes the waiters on s; s.mu must be held.
func (s *pauseState) notify() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// wait returns a channel closed at the next change; s.mu must be held.
func (s *pauseState) wait() <-chan struct{} {
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// set changes the flag; a pause interrupts the handling of events.
// byProcess says whether this process asked for it (rather than the
// flag read from the store), which makes a read of the store that was
// under way when it happened out of date.
func (p *Processor) setPaused(paused, byProcess bool) {
	s := &p.pause
	s.mu.Lock()
	if byProcess {
		s.gen++
	}
	if s.paused == paused {
		s.mu.Unlock()
		return
	}
	s.paused = paused
	if paused && s.interrupt != nil {
		s.interrupt(errPaused)
	}
	s.notify()
	s.mu.Unlock()
	p.pausePartitions(paused, byProcess)
	p.update(func(st *Status) {
		st.Paused = paused
		if !paused && st.State == Paused {
			st.State = Running
		}
	})
}

// Pause stops the processor from handling events until [Processor.Resume],
// here and in every process that shares its store: the flag is recorded
// in the processor's row ([Store.SetPaused], which the admin command uses
// too) and read by every process running the processor, within
// [Options.PauseCheckInterval].
//
// When the processor runs in this process, Pause interrupts the batch in
// flight — a projector's rolls back; a reactor saves the position of the
// events it has handled — and returns once the processor has stopped
// handling events (or ctx ends): from then on it handles nothing until it
// is resumed. A paused processor keeps running otherwise: it keeps its
// lease under [Processor.RunOwned] (renewing it, so that no other process
// takes it over, which would find the processor paused anyway), and
// resumes from its saved position. Its status shows the state [Paused]
// and Paused true.
//
// A processor can be paused before it runs: it then starts paused. Pause
// records the processor's start position ([Options.Start]) first if it
// has no saved position yet. It fails with [ErrInvalid] when the store
// keeps no pause flags.
func (p *Processor) Pause(ctx context.Context) error {
	// Interrupt the batch in flight before recording the flag: on SQLite
	// the flag's write waits for the write lock, which a projector's
	// batches hold one after another.
	s := &p.pause
	s.mu.Lock()
	was := s.paused
	s.recording++
	s.mu.Unlock()
	p.setPaused(true, true)
	err := p.recordPaused(ctx, true)
	// A read of the flag by watchPause that began before it was recorded
	// may have found it unset: count a change, so that the read is out
	// of date.
	s.mu.Lock()
	s.recording--
	s.gen++
	s.mu.Unlock()
	if err != nil {
		if !was {
			p.setPaused(false, true)
		}
		return fmt.Errorf("processing: pause %s: %w", p.name, err)
	}
	// Wait for the run (or the partitions' runs) to leave the handling of
	// events.
	waiting := []*Processor{p}
	if p.parts != nil {
		waiting = p.partitions()
	}
	for _, w := range waiting {
		if err := w.awaitIdle(ctx); err != nil {
			return fmt.Errorf("processing: pause %s: %w", p.name, err)
		}
	}
	return nil
}

// awaitIdle waits until p's run has left the handling of events, or p is
// no longer paused.
func (p *Processor) awaitIdle(ctx context.Context) error {
	s := &p.pause
	for {
		s.mu.Lock()
		if !s.handling || !s.paused {
			s.mu.Unlock()
			return nil
		}
		ch := s.wait()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Resume undoes [Processor.Pause], here and in every process that shares
// the processor's store: the processor goes on from its saved position.
// A processor that is not paused stays as it is.
func (p *Processor) Resume(ctx context.Context) error {
	if err := p.recordPaused(ctx, false); err != nil {
		return fmt.Errorf("processing: resume %s: %w", p.name, err)
	}
	p.setPaused(false, true)
	return nil
}

// recordPaused writes the pause flag to the processor's row, creating the
// row first.
func (p *Processor) recordPaused(ctx context.Context, paused bool) error {
	ps, ok := p.store.(pauseStore)
	if !ok {
		return fmt.Errorf("%w: the store (%T) keeps no pause flags", ErrInvalid, p.store)
	}
	if _, _, err := p.loadPosition(ctx); err != nil {
		return err
	}
	return ps.SetPaused(ctx, p.name, paused)
}

// watchPause reads the pause flag from the store now, and then every
// PauseCheckInterval until ctx ends or the returned function is called
// (which waits for the watcher to stop). A store without pause flags is
// not watched.
func (p *Processor) watchPause(ctx context.Context, log *slog.Logger) (stop func()) {
	ps, ok := p.store.(pauseStore)
	if !ok {
		return func() {}
	}
	read := func() {
		p.pause.mu.Lock()
		gen := p.pause.gen
		p.pause.mu.Unlock()
		paused, err := ps.Paused(ctx, p.pauseName())
		if err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "event processor cannot read its pause flag", "error", err)
			}
			return
		}
		p.pause.mu.Lock()
		// This process paused or resumed it meanwhile, or is recording a
		// pause.
		stale := p.pause.gen != gen || p.pause.recording > 0
		p.pause.mu.Unlock()
		if !stale {
			p.setPaused(paused, false)
		}
	}
	read()
	interval := p.opts.PauseCheckInterval
	if interval < 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// awaitResume waits while the processor is paused, in state Paused. It
// returns false when ctx ends first.
func (p *Processor) awaitResume(ctx context.Context) bool {
	s := &p.pause
	shown := false
	for {
		s.mu.Lock()
		if !s.paused {
			s.mu.Unlock()
			if shown {
				p.update(func(st *Status) { st.State = Running })
				p.opts.Logger.InfoContext(ctx, "event processor resumed", "processor", p.name)
			}
			return true
		}
		ch := s.wait()
		s.mu.Unlock()
		if !shown {
			p.update(func(st *Status) { st.State, st.Paused = Paused, true })
			shown = true
			p.opts.Logger.InfoContext(ctx, "event processor paused", "processor", p.name)
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// pausable runs r.once under a context that a pause cancels, and returns
// errPaused when a pause ended it (or came before it started).
func (r *run) pausable(ctx context.Context) error {
	p := r.p
	s := &p.pause
	s.mu.Lock()
	if s.paused {
		s.mu.Unlock()
		return errPaused
	}
	octx, cancel := context.WithCancelCause(ctx)
	s.handling, s.interrupt = true, cancel
	s.mu.Unlock()
	defer func() {
		cancel(nil)
		s.mu.Lock()
		if s.paused && ctx.Err() == nil {
			// Shown before Pause returns (it waits for handling to
			// end); a resume, which takes s.mu first, shows Running.
			p.update(func(st *Status) { st.State = Paused })
		}
		s.handling, s.interrupt = false, nil
		s.notify()
		s.mu.Unlock()
	}()
	err := r.once(octx)
	if ctx.Err() == nil && errors.Is(context.Cause(octx), errPaused) {
		return errPaused
	}
	return err
}
