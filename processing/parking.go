package processing

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnhq/cairn/event"
)

// Parking is what a processor that parks events ([Options.Park]) needs of
// its store besides a [Store]: the table of parked events, and reading an
// event again to retry it. *eventstore.Store implements it.
type Parking interface {
	// Park records the parked events and moves the processor's position
	// from from to to, in one transaction, if its row still has epoch
	// and from; saved is false, and nothing is recorded, when not.
	Park(ctx context.Context, name string, epoch, from, to int64, parked []event.Parked) (saved bool, err error)
	// ParkedEvents returns the processor's parked events in position
	// order, those of one stream or, when streamID is "", of all; at most
	// limit of them (0: no limit).
	ParkedEvents(ctx context.Context, processor, streamID string, limit int) ([]event.Parked, error)
	// ParkedStreams sums up the processor's parked events per stream.
	ParkedStreams(ctx context.Context, processor string) ([]event.ParkedStream, error)
	// ParkedCount returns the number of the processor's parked events and
	// when the oldest first failed.
	ParkedCount(ctx context.Context, processor string) (n int, oldest time.Time, err error)
	// Unpark removes the processor's parked events at the positions, all
	// or none: removed is false when one of them is not parked.
	Unpark(ctx context.Context, processor string, positions ...int64) (removed bool, err error)
	// ParkedFailed records another failed attempt at a parked event.
	ParkedFailed(ctx context.Context, processor string, position int64, msg string) error
	// ReadAll yields the events after a position, in order, at most
	// limit of them.
	ReadAll(ctx context.Context, after int64, limit int, types ...string) iter.Seq2[event.Event, error]
}

// DefaultParkAttempts is how many times a parking processor with no
// [Options.ErrorHandler] attempts an event before it parks it.
const DefaultParkAttempts = 5

// ErrNotParked reports a retry or skip of events that are not parked: they
// never were, or another retry or skip removed them first.
var ErrNotParked = errors.New("processing: event not parked")

// parking is a processor's side of parking.
type parking struct {
	store Parking // nil when the store keeps no parked events
	// defaultPolicy: the processor parks and has no error handler of
	// its own, so an event is parked after DefaultParkAttempts.
	defaultPolicy bool
	// exclusive keeps a retry's handlers from running at the same time
	// as a batch's, in this process (a projection's Begin and Flush hooks
	// may share state between them). A concurrent run's events take it
	// shared (concurrency.go).
	exclusive sync.RWMutex
}

// newParking readies the parking of a processor over store with opts
// (before their defaults are applied).
func newParking(store Store, opts Options) (*parking, error) {
	pk := &parking{defaultPolicy: opts.Park && opts.ErrorHandler == nil}
	pk.store, _ = store.(Parking)
	if opts.Park && pk.store == nil {
		return nil, fmt.Errorf("%w: Park needs a store that keeps parked events (%T does not)", ErrInvalid, store)
	}
	return pk, nil
}

// parkRun is the parking state of one run of a processor.
type parkRun struct {
	// streams maps each stream with parked events to the position of its
	// first one. It may hold streams whose events have been retried or
	// skipped since (split checks those it meets again), never miss one:
	// only the running processor parks.
	streams map[string]int64
	// cand is the event the last attempt failed at, when it can be parked
	// (the position was saved right before it).
	cand *parkCandidate
	// failing is the position of the event that failed last, and since
	// when it has been failing.
	failing      int64
	failingSince time.Time
}

type parkCandidate struct {
	from    int64          // the saved position, right before the event
	event   event.Parked   // the event (without error and attempts)
	waiting []event.Parked // events between from and it, parked behind others
}

// loadParked readies a parking run: it loads the streams with parked
// events, and the processor's status counts them.
func (r *run) loadParked(ctx context.Context) error {
	p := r.p
	if !p.opts.Park {
		return nil
	}
	streams, err := p.pk.store.ParkedStreams(ctx, p.name)
	if err != nil {
		return err
	}
	if r.pk == nil {
		r.pk = &parkRun{}
	}
	r.pk.streams, r.pk.cand = make(map[string]int64, len(streams)), nil
	n, oldest := 0, time.Time{}
	for _, s := range streams {
		r.pk.streams[s.StreamID] = s.First
		n += s.Count
		if oldest.IsZero() || s.Since.Before(oldest) {
			oldest = s.Since
		}
	}
	p.update(func(s *Status) { s.Parked, s.OldestParked = n, oldest })
	return nil
}

// split takes the events of streams with parked events out of b: they are
// parked behind them, by cp, which records them with the position that
// passes them. It checks again, in the store, the streams it finds parked,
// in case a retry or skip has cleared them since.
func (r *run) split(ctx context.Context, b event.Batch, cp Checkpoint) (event.Batch, Checkpoint, error) {
	if r.pk == nil {
		return b, cp, nil
	}
	r.pk.cand = nil
	if len(r.pk.streams) == 0 {
		return b, cp, nil
	}
	var checked map[string]bool
	var events []event.Event // nil until the first event parked
	var waiting []event.Parked
	for i, e := range b.Events {
		first, parked := r.pk.streams[e.StreamID]
		if parked && !checked[e.StreamID] {
			if checked == nil {
				checked = make(map[string]bool)
			}
			checked[e.StreamID] = true
			var err error
			if first, parked, err = r.recheck(ctx, e.StreamID); err != nil {
				return b, cp, err
			}
		}
		switch {
		case !parked && events != nil:
			events = append(events, e)
		case parked:
			if events == nil {
				events = append(make([]event.Event, 0, len(b.Events)), b.Events[:i]...)
			}
			waiting = append(waiting, event.Parked{
				Processor: r.p.name, Position: e.Position, StreamID: e.StreamID, Version: e.Version, Type: e.Type, WaitsOn: first,
			})
		}
	}
	if waiting == nil {
		return b, cp, nil
	}
	cp.parker, cp.parked = r.p.pk.store, waiting
	return event.Batch{Events: events, Through: b.Through}, cp, nil
}

// recheck looks in the store for the first parked event of a stream the
// run believes parked.
func (r *run) recheck(ctx context.Context, stream string) (first int64, parked bool, err error) {
	rows, err := r.p.pk.store.ParkedEvents(ctx, r.p.name, stream, 1)
	if err != nil {
		return 0, false, err
	}
	if len(rows) == 0 {
		delete(r.pk.streams, stream)
		return 0, false, nil
	}
	r.pk.streams[stream] = rows[0].Position
	return rows[0].Position, true, nil
}

// afterBatch counts and logs what a handled batch (b, as split) parked,
// and notes the event it failed at, herr, if it can be parked: the
// handler saved the position right before it (saved; from is where the
// batch started).
func (r *run) afterBatch(ctx context.Context, b event.Batch, cp Checkpoint, from, saved int64, herr error) {
	if r.pk == nil {
		return
	}
	if saved > from {
		r.parkedOK(ctx, cp.parkedThrough(saved))
	}
	ee, ok := errors.AsType[*EventError](herr)
	if !ok {
		return
	}
	prev := from
	for _, e := range b.Events {
		if e.Position == ee.Position {
			if max(saved, from) != prev {
				return // the events before it are not saved
			}
			c := &parkCandidate{from: prev, event: event.Parked{Processor: r.p.name, Position: e.Position, StreamID: e.StreamID, Version: e.Version, Type: e.Type}}
			for _, w := range cp.parked {
				if w.Position > prev && w.Position < e.Position {
					c.waiting = append(c.waiting, w)
				}
			}
			r.noteCandidate(c)
			return
		}
		prev = e.Position
	}
}

// readFailed notes the event a read failed at (data that does not decode,
// an unknown type), after every event before it was handled and saved:
// pos.
func (r *run) readFailed(err error, pos int64) {
	if r.pk == nil {
		return
	}
	de, ok := errors.AsType[*event.DecodeError](err)
	if !ok || de.Position <= pos {
		return
	}
	r.noteCandidate(&parkCandidate{from: pos, event: event.Parked{Processor: r.p.name, Position: de.Position, StreamID: de.StreamID, Version: de.Version, Type: de.Type}})
}

// noteCandidate notes c as the event that can be parked if the error
// handler gives up on it.
func (r *run) noteCandidate(c *parkCandidate) {
	r.pk.cand = c
	if r.pk.failing != c.event.Position {
		r.pk.failing, r.pk.failingSince = c.event.Position, time.Now()
	}
}

// candidate returns the event err is about if it can be parked now.
func (r *run) candidate(err error) *parkCandidate {
	if r.pk == nil || r.pk.cand == nil {
		return nil
	}
	pos, _, _ := failedEvent(err)
	if pos != r.pk.cand.event.Position {
		return nil
	}
	return r.pk.cand
}

// parkBehind parks at once the event a run failed at with err, without
// counting an attempt, when its stream has parked events already: it
// would have waited behind them had it been read. It reports whether it
// did. (Only an event that failed to be read can get there: the events of
// parked streams are never handed to the handlers.)
func (r *run) parkBehind(ctx context.Context, err error) bool {
	c := r.candidate(err)
	if c == nil {
		return false
	}
	if _, parked := r.pk.streams[c.event.StreamID]; !parked {
		return false
	}
	first, parked, cerr := r.recheck(ctx, c.event.StreamID)
	if cerr != nil || !parked {
		return false
	}
	row := c.event
	row.WaitsOn, row.Error = first, parkedError(err)
	if perr := r.park(ctx, c, row); perr != nil {
		r.log.WarnContext(ctx, "event processor cannot park an event", "position", row.Position, "stream", row.StreamID, "type", row.Type, "error", perr)
		return false
	}
	r.parkedOK(ctx, append(c.waiting, row))
	return true
}

// parkFailed parks the event of f, which the error handler has given up
// on, if it can be parked now, and sets f.Parked. It returns an error
// only when the processor has lost its lease meanwhile (fenced, under
// RunOwned); a failure to park is joined to f.Err, and the processor
// stops as it would without parking.
func (r *run) parkFailed(ctx context.Context, f *Failure) (lost error) {
	c := r.candidate(f.Err)
	if c == nil {
		return nil
	}
	row := c.event
	row.Error, row.Attempts, row.FirstFailedAt = parkedError(f.Err), f.Attempt, r.pk.failingSince
	err := r.park(ctx, c, row)
	switch {
	case err == nil:
		f.Parked = true
		r.parkedOK(ctx, c.waiting)
		r.p.addParked(1, row.FirstFailedAt)
		if _, ok := r.pk.streams[row.StreamID]; !ok {
			r.pk.streams[row.StreamID] = row.Position
		}
	case r.owned && errors.Is(err, ErrFenced):
		return fmt.Errorf("%w: %w", errLeaseLost, err)
	default:
		f.Err = fmt.Errorf("%w (and parking the event failed: %w)", f.Err, err)
	}
	return nil
}

// park records row, and the events c.waiting, and moves the position to
// row's.
func (r *run) park(ctx context.Context, c *parkCandidate, row event.Parked) error {
	p := r.p
	saved, err := p.pk.store.Park(ctx, p.name, r.epoch, c.from, row.Position, append(c.waiting[:len(c.waiting):len(c.waiting)], row))
	if err == nil && !saved {
		err = fmt.Errorf("park position %d: %w", row.Position, ErrFenced)
	}
	if err != nil {
		return err
	}
	r.pk.cand = nil
	p.update(func(s *Status) { s.Position = max(s.Position, row.Position) })
	return nil
}

// parkedOK counts and logs events parked behind others, once committed.
func (r *run) parkedOK(ctx context.Context, rows []event.Parked) {
	if len(rows) == 0 {
		return
	}
	now := time.Now()
	for _, w := range rows {
		if w.WaitsOn == 0 {
			continue // counted and logged by the caller
		}
		attrs := []any{"position", w.Position, "stream", w.StreamID, "type", w.Type, "waits_on", w.WaitsOn}
		if w.Error != "" {
			attrs = append(attrs, "error", w.Error)
		}
		r.log.WarnContext(ctx, "event processor parked an event behind its stream's parked events", attrs...)
		if _, ok := r.pk.streams[w.StreamID]; !ok {
			r.pk.streams[w.StreamID] = w.WaitsOn
		}
		r.p.addParked(1, now)
	}
}

// parkedError is the error text recorded for a parked event: the
// handler's own error, without the event's place, which the record holds.
func parkedError(err error) string {
	if ee, ok := errors.AsType[*EventError](err); ok {
		return ee.Err.Error()
	}
	if de, ok := errors.AsType[*event.DecodeError](err); ok {
		return fmt.Sprintf("decode (schema %d): %v", de.SchemaVersion, de.Err)
	}
	return err.Error()
}

// policy returns the error handler that decides after the failure f.
func (r *run) policy(f Failure) ErrorHandler {
	if r.p.pk.defaultPolicy && r.candidate(f.Err) != nil {
		return ExponentialBackoff{MaxAttempts: DefaultParkAttempts}
	}
	return r.p.opts.ErrorHandler
}

// addParked counts n more parked events, the oldest of them parked at
// since.
func (p *Processor) addParked(n int, since time.Time) {
	p.update(func(s *Status) {
		s.Parked += n
		if s.OldestParked.IsZero() || since.Before(s.OldestParked) {
			s.OldestParked = since
		}
	})
}

// refreshParked reads the count of the processor's parked events and the
// age of the oldest into its status, if its store keeps parked events and
// the processor parks or has parked events.
func (p *Processor) refreshParked(ctx context.Context) error {
	if p.pk.store == nil || (!p.opts.Park && p.Status().Parked == 0) {
		return nil
	}
	n, oldest, err := p.pk.store.ParkedCount(ctx, p.name)
	if err != nil {
		return err
	}
	p.update(func(s *Status) { s.Parked, s.OldestParked = n, oldest })
	return nil
}

// parkingStore returns the store's parked events for op, or an error.
func (p *Processor) parkingStore(op string) (Parking, error) {
	if p.pk.store == nil {
		return nil, fmt.Errorf("processing: %s %s: %w: the store keeps no parked events", op, p.name, ErrInvalid)
	}
	return p.pk.store, nil
}

// ListParked returns the processor's parked events in position order:
// those of the stream streamID, or of every stream when streamID is "".
func (p *Processor) ListParked(ctx context.Context, streamID string) ([]event.Parked, error) {
	st, err := p.parkingStore("list parked events of")
	if err != nil {
		return nil, err
	}
	rows, err := st.ParkedEvents(ctx, p.name, streamID, 0)
	if err != nil {
		return nil, fmt.Errorf("processing: list parked events of %s: %w", p.name, err)
	}
	return rows, nil
}

// ReplayFunc handles again, in order, the parked events of one stream of a
// processor, as its kind handles events, and removes each one it handles
// from the parked events (the store's Unpark), in the same transaction as
// its effects where it has one. events[i] is the event of parked[i], or a
// zero Event when it is no longer stored (its stream was deleted): such an
// event is removed without being handled. It returns how many events it
// handled and removed, and the error of the one it stopped at: an
// [*EventError] for a handler's failure, or an error matching
// [ErrNotParked] when an event was no longer parked (another retry or
// skip took it first).
type ReplayFunc func(ctx context.Context, parked []event.Parked, events []event.Event) (replayed int, err error)

// RetryParkedWith retries the parked events of the stream streamID, in
// order, through replay (the projector and reactor packages give theirs:
// use their RetryParked). It reads the events from the store, hands them
// to replay and returns how many were handled and removed. When one fails
// again, it and the stream's later events stay parked: the failed one's
// attempts grow by one and its error is recorded, and RetryParkedWith
// returns the error. A retry may run while the processor runs, in this
// process or another: the processor parks the stream's new events behind
// whatever is still parked, and goes back to handling them once nothing
// is.
func (p *Processor) RetryParkedWith(ctx context.Context, streamID string, replay ReplayFunc) (retried int, err error) {
	fail := func(err error) error {
		return fmt.Errorf("processing: %s: retry parked events of stream %q: %w", p.name, streamID, err)
	}
	st, err := p.parkingStore("retry parked events of")
	if err != nil {
		return 0, err
	}
	if streamID == "" {
		return 0, fail(fmt.Errorf("%w: empty stream ID", ErrInvalid))
	}
	if err := p.start(); err != nil {
		return 0, err
	}
	rows, err := st.ParkedEvents(ctx, p.name, streamID, 0)
	if err != nil {
		return 0, fail(err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	events := make([]event.Event, 0, len(rows))
	var readErr error
	for _, row := range rows {
		e, err := readAt(ctx, st, row.Position)
		if err != nil {
			readErr = err
			break
		}
		events = append(events, e)
	}
	p.pk.exclusive.Lock()
	n, err := 0, error(nil)
	if len(events) > 0 {
		n, err = replay(ctx, rows[:len(events)], events)
	}
	p.pk.exclusive.Unlock()
	if err == nil {
		err = readErr
	}
	log := p.opts.Logger.With("processor", p.name)
	if err == nil {
		log.InfoContext(ctx, "parked events retried", "stream", streamID, "events", n)
		p.refreshParkedAfter(ctx, log)
		return n, nil
	}
	if n < len(rows) && !errors.Is(err, ErrNotParked) && ctx.Err() == nil {
		row := rows[n]
		if rerr := st.ParkedFailed(ctx, p.name, row.Position, parkedError(err)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		log.WarnContext(ctx, "parked event failed again; it stays parked", "position", row.Position, "stream", row.StreamID,
			"type", row.Type, "attempts", row.Attempts+1, "error", err)
	}
	p.refreshParkedAfter(ctx, log)
	return n, fail(err)
}

// readAt reads the event at position; a zero Event when it is no longer
// stored.
func readAt(ctx context.Context, st Parking, position int64) (event.Event, error) {
	for e, err := range st.ReadAll(ctx, position-1, 1) {
		if err != nil {
			return event.Event{}, err
		}
		if e.Position == position {
			return e, nil
		}
	}
	return event.Event{}, nil
}

// SkipParked removes parked events of the stream streamID without
// handling them: those at the positions given, or all of the stream's
// when none are. Each skipped event is logged at WARN with who skipped it
// (an operator's name, say), as an audit record. It returns the skipped
// events; it fails with [ErrNotParked], and skips nothing, when one of
// the positions is not a parked event of the stream.
//
// A skipped event is never handled: the read model or side effects of its
// stream go on without it. Skip the first parked event of a stream and
// retry the others to drop one poison event and keep the rest.
func (p *Processor) SkipParked(ctx context.Context, streamID, who string, positions ...int64) ([]event.Parked, error) {
	fail := func(err error) error {
		return fmt.Errorf("processing: %s: skip parked events of stream %q: %w", p.name, streamID, err)
	}
	st, err := p.parkingStore("skip parked events of")
	if err != nil {
		return nil, err
	}
	if streamID == "" || who == "" {
		return nil, fail(fmt.Errorf("%w: empty stream ID or who", ErrInvalid))
	}
	rows, err := st.ParkedEvents(ctx, p.name, streamID, 0)
	if err != nil {
		return nil, fail(err)
	}
	if len(positions) > 0 {
		byPos := make(map[int64]event.Parked, len(rows))
		for _, r := range rows {
			byPos[r.Position] = r
		}
		rows = rows[:0]
		for _, pos := range positions {
			r, ok := byPos[pos]
			if !ok {
				return nil, fail(fmt.Errorf("position %d: %w", pos, ErrNotParked))
			}
			rows = append(rows, r)
			delete(byPos, pos) // a position given twice is skipped once
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	skip := make([]int64, len(rows))
	for i, r := range rows {
		skip[i] = r.Position
	}
	removed, err := st.Unpark(ctx, p.name, skip...)
	if err == nil && !removed {
		err = ErrNotParked
	}
	if err != nil {
		return nil, fail(err)
	}
	log := p.opts.Logger.With("processor", p.name)
	for _, r := range rows {
		log.WarnContext(ctx, "parked event skipped", "who", who, "position", r.Position, "stream", r.StreamID, "type", r.Type,
			"attempts", r.Attempts, "error", r.Error, "waits_on", r.WaitsOn)
	}
	p.refreshParkedAfter(ctx, log)
	return rows, nil
}

// refreshParkedAfter refreshes the status after a retry or skip, logging
// a failure to.
func (p *Processor) refreshParkedAfter(ctx context.Context, log *slog.Logger) {
	n, oldest, err := p.pk.store.ParkedCount(ctx, p.name)
	if err != nil {
		log.WarnContext(ctx, "event processor cannot count its parked events", "error", err)
		return
	}
	p.update(func(s *Status) { s.Parked, s.OldestParked = n, oldest })
}

// SaveWithParking is [Checkpoint.SaveWith] for a handler whose position
// commits in its own transaction (a projector's): when the processor
// parks the batch's events of streams with parked events, it first
// records those up to position through park, in that transaction, so
// that they commit with the position that passes them. Such a handler
// must save with SaveWithParking: SaveWith refuses a position that passes
// parked events.
func (c Checkpoint) SaveWithParking(ctx context.Context, position int64, save SaveFunc, park ParkFunc) error {
	if rows := c.parkedThrough(position); len(rows) > 0 {
		if err := park(ctx, rows); err != nil {
			return err
		}
	}
	return c.save(ctx, position, save)
}

// ParkFunc records parked events, in the caller's transaction when they
// must commit with other writes: a projector's store's ParkTx in the
// batch's transaction.
type ParkFunc func(ctx context.Context, parked []event.Parked) error

// parkedThrough returns the batch's parked events up to position.
func (c Checkpoint) parkedThrough(position int64) []event.Parked {
	i := 0
	for i < len(c.parked) && c.parked[i].Position <= position {
		i++
	}
	return c.parked[:i]
}

// saveParked saves position through the store with the batch's parked
// events up to it, in one transaction, if there are any; ok reports
// whether there were.
func (c Checkpoint) saveParked(ctx context.Context, position int64) (ok bool, err error) {
	rows := c.parkedThrough(position)
	if len(rows) == 0 {
		return false, nil
	}
	saved, err := c.parker.Park(ctx, c.name, c.epoch, c.from, position, rows)
	if err == nil && !saved {
		err = fmt.Errorf("save position %d: %w", position, ErrFenced)
	}
	return true, err
}
