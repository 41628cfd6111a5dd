package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/tracectx"
)

// Append stores events at the end of the stream if the stream's version
// satisfies expected, and returns them as recorded, with their positions.
//
// All events of one call are stored or none is. A version mismatch returns
// an error matching [event.ErrVersionConflict] (with a
// [*event.VersionConflictError] in its chain); an append to a deleted stream
// one matching [event.ErrStreamDeleted]. When the append gives event IDs
// ([event.WithIDs]) and all of them are stored already at the place the
// append would put them, Append writes nothing and returns the stored
// events; an ID stored anywhere else is an error matching
// [event.ErrDuplicateEventID].
//
// The Data of the returned events is the appended value (dereferenced when
// a pointer was given). Event data is stored as its codec encodes it, byte
// for byte; data the codec refuses to encode — with [event.JSONCodec], a
// string that is not valid UTF-8, which JSON cannot carry — fails with
// [ErrInvalidArgument] and writes nothing, so that every later read
// returns what Append returned. Append returns once the events are durably
// committed; if ctx ends first while the append is still queued, it returns
// ctx's error and writes nothing.
//
// A lost connection never leaves the caller guessing: when the transaction
// carrying the append loses its connection, or cannot get one, Append
// finds out through the event IDs whether the events were stored, on a new
// connection, and answers with the stored events if they were; if they
// were not, it writes them (see "Lost connections" in the package
// documentation). If the database stays out of reach, it fails with an
// error matching [ErrUnavailable]: either nothing was stored, or, when a
// transaction may have committed, the error is an [*OutcomeUnknownError]
// with the event IDs to append again with.
func (s *Store) Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events []any, opts ...event.AppendOption) ([]event.Event, error) {
	ctx, span := s.startAppend(ctx, streamID, expected, len(events))
	start := s.m.startAppend(ctx)
	out, written, err := s.appendEvents(ctx, span, streamID, expected, events, opts)
	s.m.appended(ctx, start, written, err)
	endAppend(span, out, err)
	return out, err
}

// appendEvents is Append within its span; it also returns how many events
// it wrote (0 for an idempotent replay).
func (s *Store) appendEvents(ctx context.Context, span trace.Span, streamID string, expected event.ExpectedVersion, events []any, opts []event.AppendOption) ([]event.Event, int, error) {
	const op = "append"
	req, err := s.newRequest(ctx, streamID, expected, events, opts)
	if err != nil {
		return nil, 0, fail(op, streamID, "", err)
	}
	if span.IsRecording() {
		req.traced = &tracedAppend{span: span, queuedAt: time.Now()}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fail(op, streamID, "", err)
	}
	s.w.submit(req)
	if req.err != nil {
		return nil, 0, fail(op, streamID, "", req.err)
	}
	if req.replay {
		stored, err := s.readStored(ctx, req)
		if err != nil {
			return nil, 0, fail(op, streamID, "", err)
		}
		return stored, 0, nil
	}
	return req.result, len(req.result), nil
}

// pendingEvent is one event of an append, encoded and ready to insert.
type pendingEvent struct {
	id       uuid.UUID
	typ      string
	schema   int
	data     []byte
	value    any
	position int64
	version  int64
}

// request is one Append call travelling through the writer.
type request struct {
	ctx         context.Context
	stream      string
	expected    event.ExpectedVersion
	events      []pendingEvent
	meta        map[string]string
	metaJSON    []byte
	causation   string
	correlation string
	explicitIDs bool

	// Set by the writer.
	wake     chan struct{} // closed when done or when made leader
	lead     []*request    // non-nil: this request leads this batch
	finished bool
	result   []event.Event
	err      error
	// replay: an idempotent no-op; the stored events start at replayFrom.
	replay     bool
	replayFrom int64
	// deferred: its IDs collided with another request of the batch.
	deferred bool
	// lost: a transaction carrying it lost its connection (connloss.go).
	lost *lostConn

	// traced: the append's span records (trace.go).
	traced *tracedAppend
}

func (s *Store) newRequest(ctx context.Context, streamID string, expected event.ExpectedVersion, events []any, opts []event.AppendOption) (*request, error) {
	if err := validStreamID(streamID); err != nil {
		return nil, err
	}
	if !expected.Valid() {
		return nil, invalid("expected version %s is negative", expected)
	}
	if len(events) == 0 {
		return nil, invalid("no events")
	}
	if s.hz != nil && len(events) > MaxXIDTransactionEvents {
		return nil, invalid("%d events: xid ordering holds at most %d per transaction", len(events), MaxXIDTransactionEvents)
	}
	var o event.AppendOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := validText("causation ID", o.CausationID); err != nil {
		return nil, err
	}
	if err := validText("correlation ID", o.CorrelationID); err != nil {
		return nil, err
	}
	if o.IDs != nil && len(o.IDs) != len(events) {
		return nil, invalid("%d event IDs for %d events", len(o.IDs), len(events))
	}
	req := &request{
		ctx:         ctx,
		stream:      streamID,
		expected:    expected,
		events:      make([]pendingEvent, len(events)),
		causation:   o.CausationID,
		correlation: o.CorrelationID,
		explicitIDs: o.IDs != nil,
		wake:        make(chan struct{}),
	}
	withTrace := tracectx.Needs(ctx, o.Metadata)
	if len(o.Metadata) > 0 || withTrace {
		req.meta = make(map[string]string, len(o.Metadata)+2)
		for k, v := range o.Metadata {
			// JSON cannot carry invalid UTF-8: refuse it rather than
			// store something other than what was given.
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, invalid("metadata %q: %q is not valid UTF-8", k, v)
			}
			req.meta[k] = v
		}
		if withTrace {
			tracectx.Inject(ctx, req.meta)
		}
		b, err := json.Marshal(req.meta)
		if err != nil {
			return nil, invalid("metadata: %v", err)
		}
		req.metaJSON = b
	}
	var seen map[uuid.UUID]struct{}
	if req.explicitIDs {
		seen = make(map[uuid.UUID]struct{}, len(o.IDs))
	}
	for i, data := range events {
		if data == nil {
			return nil, invalid("event %d: nil data", i)
		}
		if v := reflect.ValueOf(data); v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil, invalid("event %d: nil pointer", i)
			}
			data = v.Elem().Interface()
		}
		enc, err := s.reg.Encode(data)
		if err != nil {
			return nil, invalid("event %d: %w", i, err)
		}
		id := s.opts.NewID()
		if req.explicitIDs {
			id = o.IDs[i]
			if id == uuid.Nil {
				return nil, invalid("event %d: nil event ID", i)
			}
			if _, dup := seen[id]; dup {
				return nil, invalid("event ID %s given twice", id)
			}
			seen[id] = struct{}{}
		}
		req.events[i] = pendingEvent{id: id, typ: enc.Type, schema: enc.SchemaVersion, data: enc.Data, value: data}
	}
	return req, nil
}

// writer turns concurrent appends into group-commit transactions. It has
// no goroutine of its own: a caller that finds no transaction in flight
// commits its append (with whatever queued before it) at once; callers that
// arrive while a transaction is in flight queue up, and when it ends the
// next transaction takes them all, led by the first of them.
//
// One transaction is in flight at a time. Letting the next one read its
// streams while the previous one commits was measured on PostgreSQL: it
// halves the batches without shortening the cycle, which the commit's
// fsync under the ordering lock bounds.
type writer struct {
	store *Store

	mu    sync.Mutex
	busy  bool
	queue []*request
}

// submit runs req through the writer and returns when req is finished.
func (w *writer) submit(req *request) {
	w.mu.Lock()
	w.queue = append(w.queue, req)
	batch := w.next()
	w.mu.Unlock()
	for {
		if batch != nil {
			// Only a caller whose own request heads the queue starts a
			// transaction from submit.
			batch = w.lead(batch)
			if req.finished {
				w.hand(batch)
				return
			}
			if batch != nil && batch[0] == req {
				continue
			}
			w.hand(batch)
		}
		// Wait to be finished by a leader, or to lead.
		select {
		case <-req.wake:
		case <-req.ctx.Done():
			w.mu.Lock()
			if i := slices.Index(w.queue, req); i >= 0 {
				w.queue = slices.Delete(w.queue, i, i+1)
				w.mu.Unlock()
				req.err = req.expired()
				return
			}
			w.mu.Unlock()
			// Already taken into a transaction: its outcome decides.
			<-req.wake
		}
		if req.lead == nil {
			return
		}
		batch, req.lead = req.lead, nil
	}
}

// next takes the next transaction's requests off the queue if none is in
// flight: the queued requests in order, up to MaxBatchEvents events (at
// least one request). w.mu must be held.
func (w *writer) next() []*request {
	if w.busy || len(w.queue) == 0 {
		return nil
	}
	n, events := 0, 0
	for n < len(w.queue) {
		k := len(w.queue[n].events)
		if n > 0 && events+k > w.store.opts.MaxBatchEvents {
			break
		}
		events += k
		n++
	}
	batch := slices.Clone(w.queue[:n])
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	w.busy = true
	return batch
}

// hand makes the first request of batch its leader and wakes it.
func (w *writer) hand(batch []*request) {
	if batch == nil {
		return
	}
	batch[0].lead = batch
	close(batch[0].wake)
}

// lead commits batch, whose first request is the caller's own, and returns
// the next transaction to start, if any. Requests the transaction deferred
// go back to the head of the queue; if the caller's own is one of them,
// the caller waits for it like any queued caller (or leads the next
// transaction, which it then heads).
func (w *writer) lead(batch []*request) []*request {
	own := batch[0]
	deferred := w.store.commitBatch(batch, own)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy = false
	if !own.finished {
		own.wake = make(chan struct{})
	}
	if len(deferred) > 0 {
		w.queue = append(deferred, w.queue...)
	}
	return w.next()
}

// finish records the outcome of a request and wakes its caller (unless the
// caller is the leader running this very batch).
func finish(req *request, leader *request) {
	req.finished = true
	if req != leader {
		close(req.wake)
	}
}

// streamState is a stream's row in the streams table.
type streamState struct {
	version int64
	deleted bool
	exists  bool
}

// storedID locates an event found by ID.
type storedID struct {
	stream  string
	version int64
}

// writePlan is what a batch transaction writes: the new rows, in order,
// and the final version of every stream they extend.
type writePlan struct {
	rows     []*pendingRow
	versions map[string]int64
	now      time.Time
}

type pendingRow struct {
	req *request
	ev  *pendingEvent
}

// writeInput is what a batch transaction reads before deciding.
type writeInput struct {
	streams []string
	ids     []uuid.UUID
	// attempt counts the tries of this batch from 0; a dialect may make
	// the last one pessimistic.
	attempt int
}

// errRetryBatch marks a batch failure worth one more try from the start (a
// unique violation caused by another process's concurrent commit, a
// deadlock, a serialization failure).
var errRetryBatch = errors.New("eventstore: retry batch")

// commitBatch writes the live requests of batch in one transaction and
// finishes each of them. It returns the requests to try again in the next
// batch.
func (s *Store) commitBatch(batch []*request, leader *request) (deferred []*request) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.expired(); err != nil {
			r.err = err
			finish(r, leader)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return nil
	}
	in := writeInput{}
	seenStream := make(map[string]struct{}, len(live))
	for _, r := range live {
		if _, ok := seenStream[r.stream]; !ok {
			seenStream[r.stream] = struct{}{}
			in.streams = append(in.streams, r.stream)
		}
		if r.explicitIDs {
			for i := range r.events {
				in.ids = append(in.ids, r.events[i].id)
			}
		}
	}

	tctx, endCommit := s.traceCommit(leader.ctx, live, leader)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tctx), s.opts.WriteTimeout)
	defer cancel()
	var err error
	attempt := 0
	defer func() { endCommit(attempt+1, err) }()
	for ; ; attempt++ {
		for _, r := range live {
			r.err, r.replay, r.deferred, r.result = nil, false, false, nil
		}
		in.attempt = attempt
		// The last attempt goes through write, which takes the ordering
		// lock exclusively before its reads: under OrderingXID appends to
		// one stream from several processes race, and one of them must win.
		if dw, ok := s.d.(directWriter); ok && attempt < 2 && dw.direct(live) {
			err = dw.writeDirect(ctx, live)
		} else {
			err = s.d.write(ctx, in, func(states map[string]streamState, found map[uuid.UUID]storedID) writePlan {
				return s.plan(live, states, found)
			})
		}
		if !errors.Is(err, errRetryBatch) || attempt == 2 {
			break
		}
	}
	if lerr, lost := lostConnection(ctx, err); lost {
		return retryLost(leader.ctx, live, lerr, !unsent(err))
	}
	for _, r := range live {
		if r.deferred {
			r.err = nil
			deferred = append(deferred, r)
			continue
		}
		if err != nil {
			r.err = err
			r.result = nil
			r.replay = false
		}
		finish(r, leader)
	}
	if err == nil {
		s.wake.broadcast()
		s.m.committed(leader.ctx, live)
	}
	return deferred
}

// directWriter is implemented by a dialect with a shorter transaction for
// common batches, in which the database checks the expected versions
// itself, so that Go need not read the streams first.
type directWriter interface {
	// direct reports whether writeDirect can write the batch.
	direct(live []*request) bool
	// writeDirect writes the events of every request whose stream is at
	// the expected version, and sets each request's result or error.
	writeDirect(ctx context.Context, live []*request) error
}

// kindCode encodes an expected version's kind for SQL: 0 any, 1 no
// stream, 2 stream exists, 3 exact.
func kindCode(v event.ExpectedVersion) int32 {
	switch {
	case v.IsNoStream():
		return 1
	case v.IsStreamExists():
		return 2
	}
	if _, exact := v.Exact(); exact {
		return 3
	}
	return 0
}

// rejected sets the error of a request the database did not accept, from
// its stream's state.
func rejected(r *request, st streamState) {
	if st.deleted {
		r.err = event.ErrStreamDeleted
		return
	}
	r.err = &event.VersionConflictError{StreamID: r.stream, Expected: r.expected, Actual: st.version}
}

// plan decides every live request of a batch against the stored state, in
// order, and returns what to write. It sets err, replay or deferred on the
// requests it does not accept, and the versions of the accepted events.
func (s *Store) plan(live []*request, states map[string]streamState, found map[uuid.UUID]storedID) writePlan {
	p := writePlan{versions: make(map[string]int64), now: s.opts.Now().UTC().Truncate(time.Microsecond)}
	pendingIDs := make(map[uuid.UUID]struct{})
	for _, r := range live {
		st := states[r.stream]
		if v, ok := p.versions[r.stream]; ok {
			st.version, st.exists = v, true
		}
		if r.explicitIDs {
			if decided := s.checkIDs(r, st, found, pendingIDs); decided {
				continue
			}
		}
		if st.deleted {
			r.err = event.ErrStreamDeleted
			continue
		}
		if !r.expected.Matches(st.version) {
			r.err = &event.VersionConflictError{StreamID: r.stream, Expected: r.expected, Actual: st.version}
			continue
		}
		for i := range r.events {
			ev := &r.events[i]
			ev.version = st.version + int64(i) + 1
			p.rows = append(p.rows, &pendingRow{req: r, ev: ev})
			if r.explicitIDs {
				pendingIDs[ev.id] = struct{}{}
			}
		}
		p.versions[r.stream] = st.version + int64(len(r.events))
	}
	return p
}

// checkIDs handles an append with caller-given IDs whose IDs may be stored
// already. It reports whether it decided the request.
func (s *Store) checkIDs(r *request, st streamState, found map[uuid.UUID]storedID, pending map[uuid.UUID]struct{}) bool {
	hits := 0
	for i := range r.events {
		id := r.events[i].id
		if _, ok := pending[id]; ok {
			r.deferred = true
			return true
		}
		if _, ok := found[id]; ok {
			hits++
		}
	}
	if hits == 0 {
		return false
	}
	first, ok := found[r.events[0].id]
	same := hits == len(r.events) && ok && first.stream == r.stream
	for i := 1; same && i < len(r.events); i++ {
		at := found[r.events[i].id]
		same = at.stream == r.stream && at.version == first.version+int64(i)
	}
	if same && r.expected.Matches(first.version-1) {
		r.replay, r.replayFrom = true, first.version
		return true
	}
	for i := range r.events {
		if at, ok := found[r.events[i].id]; ok {
			r.err = fmt.Errorf("%w: %s is stored as version %d of stream %q", event.ErrDuplicateEventID,
				r.events[i].id, at.version, at.stream)
			break
		}
	}
	return true
}

// finishAccepted builds the results of the accepted requests once the rows
// have their positions.
func finishAccepted(p writePlan) {
	for _, row := range p.rows {
		r := row.req
		if r.result == nil {
			r.result = make([]event.Event, 0, len(r.events))
		}
		ev := row.ev
		r.result = append(r.result, event.Event{
			Position:      ev.position,
			ID:            ev.id,
			StreamID:      r.stream,
			Version:       ev.version,
			Type:          ev.typ,
			Data:          ev.value,
			Metadata:      cloneMeta(r.meta),
			CausationID:   r.causation,
			CorrelationID: r.correlation,
			RecordedAt:    p.now,
		})
	}
}

func cloneMeta(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
