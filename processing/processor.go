package processing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/event"
)

// Handler is the part of a processor that projectors and reactors differ
// in: what is done with a batch of events, and when the position is saved.
type Handler interface {
	// Types returns the event type names the processor reads; none means
	// every type. It is called once at the start of each Run.
	Types() []string
	// HandleBatch handles the batch's events in order and saves the
	// position with cp: b.Through once every event is handled. It returns
	// the position it saved (committed), which is b.Through on success.
	// On failure it returns the error — an [*EventError] naming the
	// failing event where there is one — and the position it saved
	// before failing, or 0 when it saved none. cp moves the position from
	// where it was before the batch, so it saves once per batch (or once
	// per committed transaction). The batch always holds at least one
	// event.
	HandleBatch(ctx context.Context, b event.Batch, cp Checkpoint) (saved int64, err error)
}

// DefaultBatchSize is the number of events a processor reads and handles
// at a time, unless [Options.BatchSize] says otherwise.
const DefaultBatchSize = 1000

// Options configures a [Processor]. The zero value works.
type Options struct {
	// BatchSize is the most events read and handled at a time (one
	// transaction per batch for a projector); zero means
	// DefaultBatchSize.
	BatchSize int
	// ErrorHandler decides whether to retry after a failure; nil means
	// ExponentialBackoff{} (100ms doubling up to a minute, no limit).
	ErrorHandler ErrorHandler
	// Logger receives a message for each failure; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnError, if set, is called after each failure, from the
	// processor's goroutine, before it waits to retry: a hook for error
	// reporting services. It must not block for long. With Concurrency
	// above 1 it is called from the failing stream's goroutine, one call
	// at a time.
	OnError func(Failure)
	// Start is where the processor starts when it has no saved position
	// yet: [FromBeginning] (the zero value), [FromHead] or [After] a
	// position. See [Start].
	Start Start
	// Streams limits the processor to one stream or to a category of
	// streams (see [event.StreamFilter]); the zero value reads every
	// stream. The store filters the events; the position moves past the
	// events of other streams as usual.
	Streams event.StreamFilter
	// Middleware wraps the processor's handling of each event, the first
	// outermost (see [Middleware]). Only processors with typed handlers
	// ([NewKind]: projectors and reactors) have per-event handling to
	// wrap.
	Middleware []Middleware
	// PauseCheckInterval is how often a running processor reads its
	// pause flag from the store, to notice a pause or a resume made by
	// another process (see [Processor.Pause]); zero means
	// DefaultPauseCheckInterval, and a negative value never reads it
	// after the start of a run.
	PauseCheckInterval time.Duration
	// Park makes the processor park an event its error handler gives up
	// on, instead of stopping: it records the event in the store's
	// parked events (see [Parking]) and goes on with the next, and the
	// later events of the same stream are parked behind it, so that a
	// stream's events are never handled out of order; other streams go
	// on. An error handler that never gives up (no MaxAttempts) never
	// parks; without an ErrorHandler, an event is parked after
	// DefaultParkAttempts attempts. See the package documentation.
	Park bool
	// Concurrency, above 1, lets the processor handle the events of up
	// to that many streams at the same time, each stream's events in
	// order, one at a time; 0 or 1 handles one event at a time. The
	// position is saved only past events that are handled, with every
	// event before them. Stateless reactors and processors whose
	// handler is an [EventHandler] support it; projectors and stateful
	// reactors, whose batches are transactions, do not (split them into
	// partitions instead). See the package documentation.
	Concurrency int
	// Partitions splits the processor into that many partitions, by the
	// hash of the stream ID ([event.PartitionOf]), each with its own
	// position, lease and epoch, so that the runners of several
	// processes share its work ([Processor.RunOwned]); 0 or 1 means one
	// (unpartitioned). Per-stream order holds, since a stream always
	// falls in one partition. Change it for an existing processor with
	// [Repartition] only. Parking is not supported with partitions. See
	// "Partitions" in the package documentation.
	Partitions int
	// MeterProvider provides the meter of the processor's counters (see
	// "Metrics" in the package documentation); nil means the global one,
	// otel.GetMeterProvider(), as it is when the processor is made.
	MeterProvider metric.MeterProvider

	// TracerProvider makes the tracer of the processor's spans (see
	// "Tracing" in the package documentation); nil means
	// otel.GetTracerProvider() as New finds it.
	TracerProvider trace.TracerProvider
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.BatchSize < 0 {
		return fmt.Errorf("%w: batch size %d is negative", ErrInvalid, o.BatchSize)
	}
	if o.Concurrency < 0 {
		return fmt.Errorf("%w: concurrency %d is negative", ErrInvalid, o.Concurrency)
	}
	if o.Partitions < 0 || o.Partitions > MaxPartitions {
		return fmt.Errorf("%w: %d partitions, want 0 to %d", ErrInvalid, o.Partitions, MaxPartitions)
	}
	if o.Partitions > 1 && o.Park {
		return fmt.Errorf("%w: parking is not supported with partitions", ErrInvalid)
	}
	return o.validateMore()
}

func (o Options) withDefaults() Options {
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.ErrorHandler == nil {
		o.ErrorHandler = ExponentialBackoff{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PauseCheckInterval == 0 {
		o.PauseCheckInterval = DefaultPauseCheckInterval
	}
	return o
}

// Failure describes one failed attempt of a processor, as passed to
// [Options.OnError].
type Failure struct {
	Processor string
	// Position, StreamID and Type name the event that failed; they are
	// zero when the failure concerns no one event (a lost database
	// connection, say).
	Position int64
	StreamID string
	Type     string
	// Attempt counts the failures in a row, from 1.
	Attempt int
	Err     error
	// Retry tells whether the processor retries, after Delay, or stops.
	Retry bool
	Delay time.Duration
	// Parked tells that the processor parked the event and went on
	// ([Options.Park]) instead of stopping.
	Parked bool
}

// State is what a processor is doing.
type State int

// The states of a processor.
const (
	// Idle: the processor has not run yet.
	Idle State = iota
	// Running: catching up or following new events.
	Running
	// Retrying: waiting to retry after a failure.
	Retrying
	// Failed: stopped because its error handler gave up (or it was
	// fenced); Status's LastError says why.
	Failed
	// Stopped: its Run ended with its context.
	Stopped
	// Standby: waiting in [Processor.RunOwned] for the lease that
	// another owner holds.
	Standby
	// Paused: running, but handling nothing until it is resumed (see
	// [Processor.Pause]).
	Paused
)

var stateNames = [...]string{Idle: "idle", Running: "running", Retrying: "retrying", Failed: "failed", Stopped: "stopped", Standby: "standby", Paused: "paused"}

// String returns the state's lower-case name.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText returns the state's name, for JSON status reports.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is a snapshot of a processor's state.
type Status struct {
	Name  string
	State State
	// Position is the position this process last saved (or loaded at
	// start, or, in Standby, last saw another owner at); 0 before the
	// first Run has loaded it.
	Position int64
	// Owner is the owner of the processor's lease under
	// [Processor.RunOwned]: this process's owner ID once it holds the
	// lease, another's as last seen in Standby ("" when none holds it).
	// It is empty under [Processor.Run].
	Owner string
	// Attempts counts the failures in a row; 0 when healthy.
	Attempts int
	// LastError is the latest failure, kept after the processor recovers
	// from it; nil if it never failed.
	LastError error
	// Paused reports whether the processor is paused, as this process
	// last knew (see [Processor.Pause]).
	Paused bool
	// Parked counts the processor's parked events ([Options.Park]), and
	// OldestParked is when the oldest of them first failed (zero when
	// none is): as this process last saw them, when it parked, retried
	// or skipped events, and at each heartbeat under
	// [Processor.RunOwned].
	Parked       int
	OldestParked time.Time
	// Partitions holds the status of each partition of a partitioned
	// processor ([Options.Partitions]), by index; nil otherwise. The
	// fields above sum them up then: Position is the smallest
	// partition's, State the most pressing.
	Partitions []Status
}

// Processor is an event stream processor: it reads the events of its types
// from a store, from its saved position on, in batches, hands them to its
// [Handler], and retries or stops on failure as its [ErrorHandler] says.
// Its methods are safe for concurrent use; it runs once at a time.
type Processor struct {
	name   string
	kind   string
	store  Store
	h      Handler
	opts   Options
	pk     *parking
	meters meters          // metrics.go
	tr     processorTracer // trace.go

	running atomic.Bool
	// registered: the start position is recorded (start.go).
	registered atomic.Bool
	pause      pauseState // pause.go

	// part is set on a partition of a partitioned processor, parts on
	// a partitioned processor (partition.go).
	part  *partition
	parts *partitioned

	mu      sync.Mutex
	status  Status
	changed chan struct{} // closed and replaced at each status change
}

// MaxNameLength is the longest processor name, in bytes.
const MaxNameLength = 255

// New returns a processor named name that runs the events of store through
// h. The name identifies the processor's saved position: it must be unique
// among the processors of the store, and stay the same across restarts. New
// does not touch the database.
func New(store Store, name string, h Handler, opts Options) (*Processor, error) {
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("nil store"))
	}
	if h == nil {
		errs = append(errs, errors.New("nil handler"))
	}
	if err := validName(name); err != nil {
		errs = append(errs, err)
	}
	if err := opts.Validate(); err != nil {
		errs = append(errs, err)
	} else if err := errors.Join(opts.supportedBy(store, h), opts.concurrencyFor(h)); err != nil {
		errs = append(errs, err)
	}
	pk, err := newParking(store, opts)
	if err != nil {
		errs = append(errs, err)
	}
	m, err := newMeters(opts.MeterProvider)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("processing: new %q: %w: %w", name, ErrInvalid, err)
	}
	p := &Processor{
		name:   name,
		kind:   "processor",
		store:  store,
		h:      h,
		opts:   opts.withDefaults(),
		pk:     pk,
		meters: m,

		tr:      newProcessorTracer(opts.TracerProvider),
		status:  Status{Name: name},
		changed: make(chan struct{}),
	}
	if opts.Partitions > 1 {
		p.parts = &partitioned{}
	}
	return p, nil
}

func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxNameLength:
		return fmt.Errorf("name of %d bytes, longer than %d", len(name), MaxNameLength)
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return errors.New("name contains NUL")
		}
	}
	return nil
}

// Name returns the processor's name.
func (p *Processor) Name() string { return p.name }

// Kind returns the kind of processor p is: "processor" for one made by
// [New], the kind given to [NewKind] ("projector", "reactor") otherwise.
func (p *Processor) Kind() string { return p.kind }

// start readies the handler for a run.
func (p *Processor) start() error {
	if s, ok := p.h.(starter); ok {
		if err := s.start(); err != nil {
			return fmt.Errorf("processing: run %s: %w", p.name, err)
		}
	}
	if err := p.startConcurrency(); err != nil {
		return fmt.Errorf("processing: run %s: %w", p.name, err)
	}
	return nil
}

// Migrate creates the table of processor positions in the store's database
// if it does not exist, by migrating the store ([Positions.Migrate]). It is
// safe to run again, and from several processes at once.
func (p *Processor) Migrate(ctx context.Context) error {
	// The store's error names the operation: there is nothing to add.
	if err := p.store.Migrate(ctx); err != nil {
		return err
	}
	if p.parts != nil {
		return p.initPartitions(ctx)
	}
	return p.register(ctx)
}

// Reset moves the processor's saved position back to 0 through the store,
// so that its next Run starts from the first event (and forgets the events
// it parked, which it will read again). Any instance of the
// processor still running elsewhere is fenced: its next save fails with
// [ErrFenced] and it stops. Reset fails with [ErrRunning] while this
// Processor runs.
func (p *Processor) Reset(ctx context.Context) error {
	return p.ResetWith(ctx, p.store.ResetPosition)
}

// ResetWith is [Processor.Reset] through reset, which resets the named
// processor's position in the caller's transaction (and forgets its
// parked events): a projector resets its tables in the same one.
func (p *Processor) ResetWith(ctx context.Context, reset func(ctx context.Context, name string) error) error {
	if p.running.Load() {
		return fmt.Errorf("processing: reset %s: %w", p.name, ErrRunning)
	}
	names, err := p.rowNames(ctx)
	if err != nil {
		return fmt.Errorf("processing: reset %s: %w", p.name, err)
	}
	for _, n := range names {
		if err := reset(ctx, n); err != nil {
			return fmt.Errorf("processing: reset %s: %w", p.name, err)
		}
	}
	p.resetPartitions()
	p.update(func(s *Status) { s.Position, s.Parked, s.OldestParked = 0, 0, time.Time{} })
	return nil
}

// Status returns the processor's current state.
func (p *Processor) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.parts != nil {
		return p.partitionsStatus(p.status)
	}
	return p.status
}

// WaitFor blocks until the processor has saved a position at or past
// position (so a projection shows the event there), and returns nil. It
// returns early with the processor's error if the processor fails, and with
// ctx's error if ctx ends first. Only this process's runs of the processor
// are seen (and, while it stands by in [Processor.RunOwned], the position
// of the owner as of its last poll).
func (p *Processor) WaitFor(ctx context.Context, position int64) error {
	for {
		p.mu.Lock()
		st, ch := p.status, p.changed
		p.mu.Unlock()
		switch {
		case st.Position >= position:
			return nil
		case st.State == Failed:
			return fmt.Errorf("processing: wait for %s to reach %d: failed at %d: %w", p.name, position, st.Position, st.LastError)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (p *Processor) update(fn func(*Status)) {
	p.mu.Lock()
	fn(&p.status)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if p.part != nil {
		p.partitionChanged()
	}
}

// Run processes events until ctx ends, and then returns nil: stopping is
// not a failure. It starts from the saved position, catches up in batches
// and follows new events as they are stored. When handling fails, the
// processor's ErrorHandler decides: retry (from the last saved position,
// after the delay it gives) or stop, in which case Run returns the error.
// A handler's panic is recovered and handled as an error. Run also returns
// an error, at once, when the processor is fenced ([ErrFenced]) or runs
// already ([ErrRunning]).
//
// Run needs the position table: call [Processor.Migrate] first.
func (p *Processor) Run(ctx context.Context) error {
	if err := p.start(); err != nil {
		return err
	}
	if !p.running.CompareAndSwap(false, true) {
		return fmt.Errorf("processing: run %s: %w", p.name, ErrRunning)
	}
	defer p.running.Store(false)
	if p.parts != nil {
		return p.runPartitions(ctx, nil)
	}
	if err := p.checkUnpartitioned(ctx); err != nil {
		return err
	}
	p.update(func(s *Status) { s.Owner = "" })
	r := run{p: p, types: p.h.Types(), epoch: -1}
	return r.loop(ctx, p.opts.Logger.With("processor", p.name))
}

// loop runs r until ctx ends (nil), or until the error handler gives up
// (the error). An owned run returns errLeaseLost, without retrying, when
// it is fenced.
func (r *run) loop(ctx context.Context, log *slog.Logger) error {
	p := r.p
	defer p.watchPause(ctx, log)()
	r.log = log
	r.m = p.runMeters()
	p.update(func(s *Status) { s.State, s.Attempts = Running, 0 })
	p.recordError(ctx, log, "") // it runs again: what it stopped with before is past
	for {
		err := errPaused
		if p.awaitResume(ctx) {
			err = r.pausable(ctx)
		}
		if ctx.Err() != nil {
			p.update(func(s *Status) { s.State = Stopped })
			return nil
		}
		if errors.Is(err, errPaused) {
			continue
		}
		if r.owned && errors.Is(err, ErrFenced) {
			return fmt.Errorf("%w: %w", errLeaseLost, err)
		}
		if r.parkBehind(ctx, err) {
			continue
		}
		r.attempt++
		f := Failure{Processor: p.name, Attempt: r.attempt, Err: err}
		f.Position, f.StreamID, f.Type = failedEvent(err)
		if !errors.Is(err, ErrFenced) && !r.decided(err, &f) {
			f.Delay, f.Retry = r.policy(f).Retry(r.attempt)
		}
		if !f.Retry {
			if lost := r.parkFailed(ctx, &f); lost != nil {
				return lost
			}
			err = f.Err
		}
		p.logFailure(ctx, log, f)
		if p.opts.OnError != nil {
			p.opts.OnError(f)
		}
		r.m.failed(ctx, f)
		if f.Parked {
			r.attempt = 0
			p.update(func(s *Status) { s.State, s.Attempts, s.LastError = Running, 0, err })
			continue
		}
		if !f.Retry {
			p.update(func(s *Status) { s.State, s.Attempts, s.LastError = Failed, r.attempt, err })
			if !errors.Is(err, ErrFenced) { // fenced: another owner has it
				p.recordError(ctx, log, err.Error())
			}
			return fmt.Errorf("processing: %s: %w", p.name, err)
		}
		p.update(func(s *Status) { s.State, s.Attempts, s.LastError = Retrying, r.attempt, err })
		t := time.NewTimer(f.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			p.update(func(s *Status) { s.State = Stopped })
			return nil
		case <-t.C:
		}
		p.update(func(s *Status) { s.State = Running })
	}
}

func (p *Processor) logFailure(ctx context.Context, log *slog.Logger, f Failure) {
	attrs := make([]any, 0, 14)
	if f.Type != "" {
		attrs = append(attrs, "position", f.Position, "stream", f.StreamID, "type", f.Type)
	}
	attrs = append(attrs, "attempt", f.Attempt, "error", f.Err)
	if pe, ok := errors.AsType[*PanicError](f.Err); ok {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	switch {
	case f.Parked:
		log.WarnContext(ctx, "event processor parked an event; going on", attrs...)
	case f.Retry:
		log.WarnContext(ctx, "event processor failed; retrying", append(attrs, "retry_in", f.Delay)...)
	default:
		log.ErrorContext(ctx, "event processor failed; stopping", attrs...)
	}
}

// run is the state of one Run.
type run struct {
	p       *Processor
	types   []string
	epoch   int64 // -1 until loaded
	owned   bool  // under a lease (RunOwned): the epoch is the lease's
	attempt int   // failures in a row
	pk      *parkRun
	log     *slog.Logger
	m       runMeters // metrics.go
}

// once loads the saved position and processes from there until a failure
// or the end of ctx.
func (r *run) once(ctx context.Context) error {
	p := r.p
	pos, epoch, err := p.loadPosition(ctx)
	if err != nil {
		return err
	}
	if r.epoch < 0 {
		r.epoch = epoch
	} else if epoch != r.epoch {
		return fmt.Errorf("load position: %w", ErrFenced)
	}
	p.update(func(s *Status) { s.Position = pos })
	if err := r.loadParked(ctx); err != nil {
		return err
	}
	if p.opts.Concurrency > 1 {
		return r.concurrently(ctx, pos) // concurrency.go
	}
	for b, err := range p.subscribe(ctx, pos, r.types) {
		if err != nil {
			r.readFailed(err, pos)
			return err
		}
		cp := Checkpoint{store: p.store, name: p.name, epoch: r.epoch, from: pos}
		if b, cp, err = r.split(ctx, b, cp); err != nil {
			return err
		}
		var saved int64
		var herr error
		if len(b.Events) == 0 {
			// Only events of other types (or holes): move past them.
			if herr = cp.Save(ctx, b.Through); herr == nil {
				saved = b.Through
			}
		} else {
			saved, herr = r.handle(ctx, b, cp)
		}
		r.afterBatch(ctx, b, cp, pos, saved, herr)
		r.m.batch(ctx, b, pos, saved)
		if saved > pos {
			pos = saved
			healthy := herr == nil && r.attempt > 0
			if healthy {
				r.attempt = 0
			}
			p.update(func(s *Status) {
				s.Position = pos
				if healthy {
					s.Attempts = 0
				}
			})
		}
		if herr != nil {
			return herr
		}
	}
	return ctx.Err()
}

// handle calls the handler, turning a panic that escaped it into an error.
func (r *run) handle(ctx context.Context, b event.Batch, cp Checkpoint) (saved int64, err error) {
	r.p.pk.exclusive.Lock()
	defer r.p.pk.exclusive.Unlock()
	ctx, span := r.startBatch(ctx, b, cp)
	err = Guard(func() error {
		var herr error
		saved, herr = r.p.h.HandleBatch(ctx, b, cp)
		return herr
	})
	endBatch(span, saved, err)
	return saved, err
}
