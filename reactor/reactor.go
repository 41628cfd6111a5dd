package reactor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/processing"
)

// Store is what a reactor needs of an event store: a processing store that
// appends the events reactors emit, and whose registry names the handlers'
// event types. *eventstore.Store implements it.
type Store interface {
	processing.TypedStore
	event.Appender
}

// Options configures a [Reactor]. The zero value works.
type Options struct {
	// Processing configures the processor: batch size, error handler,
	// logger and error callback. The batch size bounds the side effects
	// repeated after a crash: the position is saved once per batch.
	Processing processing.Options
	// State, if set, makes the reactor stateful (see [State]): its store
	// must be a [StateStore], and its handlers are registered with
	// [OnState] (or [On], for those that keep no state). Its batches are
	// DefaultStateBatchSize events unless Processing.BatchSize says
	// otherwise.
	State *State
}

// Validate reports options that cannot work.
func (o Options) Validate() error { return errors.Join(o.Processing.Validate(), o.State.validate()) }

// HandlerFunc reacts to one event of type E: it triggers side effects and
// emits new events through emit. Data is the event's decoded data.
//
// A handler may run more than once for the same event (after a failure or
// a crash), so its side effects should be idempotent or tolerate repeats;
// the events it emits are stored once as long as it emits the same events
// in the same order each time.
type HandlerFunc[E any] func(ctx context.Context, e event.Event, data E, emit *Emitter) error

// Reactor reacts to events with side effects and new events. Register
// handlers with [On] before Run. Its name, status, runs and waits are
// those of the embedded [processing.Processor], whose
// [processing.Processor.Kind] is "reactor". Its methods are safe for
// concurrent use.
type Reactor struct {
	*processing.Processor
	store    Store
	handlers *processing.Handlers[*Emitter]
	state    *State     // nil: stateless
	sstore   StateStore // store, when stateful
}

// idNamespace is the namespace of the name-based (SHA-1) UUIDs given to
// emitted events.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/cairnhq/cairn/reactor"))

// New returns a reactor named name over store. The name identifies the
// reactor's position and goes into the IDs of the events it emits: it must
// be unique among the store's processors and never change. New does not
// touch the database; call [processing.Processor.Migrate] before
// [processing.Processor.Run].
//
// A reactor handles events one at a time, in order, and saves its position
// after each batch (and before a failing event), so after a crash the
// events since the last saved position are handled again: side effects
// are at-least-once, emitted events exactly-once.
//
// With processing.Options.Concurrency above 1, a stateless reactor
// handles the events of several streams at the same time (see the
// package documentation); New refuses it for a stateful one.
func New(store Store, name string, opts Options) (*Reactor, error) {
	if err := opts.State.validate(); err != nil {
		return nil, fmt.Errorf("reactor: new %q: %w", name, err)
	}
	if err := checkConcurrency(name, opts); err != nil {
		return nil, err
	}
	r := &Reactor{store: store, state: opts.State}
	handle := r.handleBatch
	if opts.State != nil {
		ss, ok := store.(StateStore)
		if !ok {
			return nil, fmt.Errorf("reactor: new %q: %w: a stateful reactor needs a StateStore; %T is not one", name, processing.ErrInvalid, store)
		}
		if _, ok := store.(txParking); !ok && opts.Processing.Park {
			return nil, fmt.Errorf("reactor: new %q: %w: a stateful reactor that parks needs a store that parks in transactions; %T does not", name, processing.ErrInvalid, store)
		}
		r.sstore, handle = ss, r.handleStateBatch
		if opts.Processing.BatchSize == 0 {
			opts.Processing.BatchSize = DefaultStateBatchSize
		}
	}
	var err error
	if r.Processor, r.handlers, err = processing.NewKind[*Emitter]("reactor", store, name, handle, opts.Processing); err != nil {
		return nil, err
	}
	if opts.State == nil {
		r.allowConcurrency() // concurrency.go
	}
	return r, nil
}

// On registers h as r's handler for events of type E, which must be
// registered with the store's registry. It fails with an error matching
// [processing.ErrInvalid] for an unregistered type, a type that has a
// handler already, or once r has started to run.
func On[E any](r *Reactor, h HandlerFunc[E]) error {
	return processing.On(r.handlers, func(ctx context.Context, emit *Emitter, e event.Event, data E) error {
		return h(ctx, e, data, emit)
	})
}

// MustOn is [On] for set-up code: it panics where On fails.
func MustOn[E any](r *Reactor, h HandlerFunc[E]) {
	if err := On(r, h); err != nil {
		panic(err)
	}
}

// Emitter appends the events a handler emits, as caused by the event being
// handled: each gets the triggering event's ID as causation ID, its
// correlation ID (or its ID, when it has none) as correlation ID, and an ID
// derived from the reactor's name, the triggering event's ID and the
// emitted event's index among those emitted for it. Appending the same
// events again is then a no-op, so events emitted before a crash or a
// failure are not stored twice when the event is handled again.
//
// An Emitter is valid only during the handler call it is passed to, and
// is not safe for concurrent use.
type Emitter struct {
	r     *Reactor
	cause event.Event
	n     int // events emitted so far
	// Of a stateful reactor: the batch's transaction, and the emits to
	// append when it commits.
	tx    *gorm.DB
	queue *[]queued
}

// Emit appends events to the stream, whatever its version, and returns
// them as stored (or as stored by an earlier attempt).
//
// In a stateful reactor ([Options.State]) the events are appended when
// the batch commits, in the transaction that saves the reactor's state
// and position, and Emit returns them as they will be recorded but
// without their positions and versions (zero), which are not known yet.
// They are dropped if the handler fails.
func (em *Emitter) Emit(ctx context.Context, streamID string, events ...any) ([]event.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(events))
	for i := range events {
		ids[i] = em.r.eventID(em.cause.ID, em.n+i)
	}
	corr := em.cause.CorrelationID
	if corr == "" {
		corr = em.cause.ID.String()
	}
	if em.queue != nil {
		out, err := em.enqueue(ctx, streamID, ids, corr, events)
		if err != nil {
			return nil, err
		}
		em.n += len(events)
		return out, nil
	}
	stored, err := em.r.store.Append(ctx, streamID, event.Any, events,
		event.WithIDs(ids...),
		event.WithCausationID(em.cause.ID.String()),
		event.WithCorrelationID(corr))
	if err != nil {
		return nil, fmt.Errorf("reactor: emit: %w", err) // the store's error names the stream
	}
	em.n += len(events)
	return stored, nil
}

// eventID returns the ID of the index-th event emitted for the event cause.
func (r *Reactor) eventID(cause uuid.UUID, index int) uuid.UUID {
	name := make([]byte, 0, len(r.Name())+50)
	name = append(name, r.Name()...)
	name = append(name, 0)
	name = append(name, cause.String()...)
	name = append(name, 0)
	name = strconv.AppendInt(name, int64(index), 10)
	return uuid.NewSHA1(idNamespace, name)
}

// saveTimeout bounds the save of a reactor's position after its context
// has ended.
const saveTimeout = 5 * time.Second

// handleBatch handles the events of a batch one at a time.
func (r *Reactor) handleBatch(ctx context.Context, batch event.Batch, cp processing.Checkpoint) (int64, error) {
	for i, e := range batch.Events {
		err := ctx.Err()
		if err == nil {
			err = r.handlers.Handle(ctx, &Emitter{r: r, cause: e}, e)
		}
		if err != nil {
			if i == 0 {
				return 0, err
			}
			// Save the events handled so far, so that a retry starts
			// at the failing one.
			// (Even when ctx has ended: stopping is when it matters.)
			through := batch.Events[i-1].Position
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
			serr := cp.Save(sctx, through)
			cancel()
			if serr != nil {
				return 0, err
			}
			return through, err
		}
	}
	if err := cp.Save(ctx, batch.Through); err != nil {
		return 0, err
	}
	return batch.Through, nil
}
