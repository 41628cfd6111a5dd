package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"github.com/cairnhq/cairn/processing"
)

// Processor is an event stream processor the runner can run:
// *projector.Projector, *reactor.Reactor and *processing.Processor
// implement it. A processor that also has a Kind() string method reports
// that kind in the status ("projector", "reactor"); others report
// "processor".
type Processor interface {
	// Name returns the processor's name, unique among the store's
	// processors.
	Name() string
	// Status returns the processor's state, position and last error.
	Status() processing.Status
	// RunOwned runs the processor while this process holds its lease,
	// until ctx ends (nil) or its error handler gives up (the error).
	RunOwned(ctx context.Context, o processing.Ownership) error
}

// Store is what a runner needs of the event store: its head, to report
// lag. *eventstore.Store implements it.
type Store interface {
	// Head returns the position of the newest event, 0 when there is
	// none.
	Head(ctx context.Context) (int64, error)
}

// Defaults of [Options]' zero fields.
const (
	DefaultGracePeriod      = 30 * time.Second
	DefaultProgressInterval = 5 * time.Second
)

// liveLag is the lag, in events, beyond which a processor that had
// caught up counts as catching up again.
const liveLag = processing.DefaultBatchSize

// Options configures a [Runner]. The zero value works.
type Options struct {
	// Logger receives progress reports and shutdown messages; nil means
	// slog.Default(). Processors log their failures to their own
	// loggers.
	Logger *slog.Logger
	// Ownership configures the leases that make each processor run in
	// one process at a time (see [processing.Ownership]); the zero value
	// works. Its Owner, when empty, is set once for the runner, so that
	// all its processors share one owner ID.
	Ownership processing.Ownership
	// GracePeriod bounds the shutdown: once Run's context ends, Run
	// waits this long for the processors to stop (their batches in flight
	// rolled back or committed, their positions saved, their leases
	// released); zero means DefaultGracePeriod.
	GracePeriod time.Duration
	// ProgressInterval is the least time between two progress messages
	// of a processor that is catching up; zero means
	// DefaultProgressInterval. Negative disables them.
	ProgressInterval time.Duration
	// MeterProvider provides the meter of the processors' gauges (see
	// "Metrics" in the package documentation), reported while Run runs;
	// nil means the global one, otel.GetMeterProvider(), as it is when
	// New is called.
	MeterProvider metric.MeterProvider
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("%w: negative grace period %v", processing.ErrInvalid, o.GracePeriod))
	}
	if err := o.Ownership.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Ownership.Owner == "" {
		o.Ownership.Owner = processing.NewOwnerID()
	}
	if o.GracePeriod == 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	return o
}

// ErrGracePeriod reports processors that were still running when the
// grace period of a shutdown ended.
var ErrGracePeriod = errors.New("runner: processors still running after the grace period")

// Runner runs event stream processors in one process: each in its own
// goroutine, isolated from the others, under its lease (so that each
// processor runs in one of the processes that share a database at a time),
// with status reports and a graceful shutdown. Its methods are safe for
// concurrent use; it runs once.
type Runner struct {
	store  Store
	opts   Options
	procs  []*proc
	meters *meters // metrics.go

	started atomic.Bool

	mu   sync.Mutex
	head int64 // last head read
}

// proc is the runner's view of one processor.
type proc struct {
	p    Processor
	kind string

	// Guarded by Runner.mu.
	done     bool
	err      error // Run's error, or a recovered panic
	caughtUp bool  // has reached the head since it last (re)started
	rates    rates
	rate     float64
	lastLog  time.Time
	// reportedLive: the sampler has last seen it live.
	reportedLive bool
	// What countLags counted (lag.go): the lag at position countedAt, and
	// the events from movedFrom to it; the position at the last sample,
	// and the events handled since the sampler started, counted.
	counted          bool
	lag, countedAt   int64
	moved, movedFrom int64
	lastPos, handled int64
	// build is what the sampler saw of its rebuild (see rebuild.go).
	build buildSample
}

// New returns a runner of the given processors, which must have distinct
// names, over store. New does not touch the database: migrate the
// processors before Run.
func New(store Store, opts Options, processors ...Processor) (*Runner, error) {
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("nil store"))
	}
	if err := opts.Validate(); err != nil {
		errs = append(errs, err)
	}
	r := &Runner{store: store, opts: opts.withDefaults()}
	seen := make(map[string]bool)
	for i, p := range processors {
		if p == nil {
			errs = append(errs, fmt.Errorf("processor %d is nil", i))
			continue
		}
		if seen[p.Name()] {
			errs = append(errs, fmt.Errorf("two processors named %q", p.Name()))
		}
		seen[p.Name()] = true
		kind := "processor"
		if k, ok := p.(interface{ Kind() string }); ok {
			kind = k.Kind()
		}
		r.procs = append(r.procs, &proc{p: p, kind: kind})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("runner: new: %w: %w", processing.ErrInvalid, err)
	}
	m, err := newMeters(opts.MeterProvider, r.procs)
	if err != nil {
		return nil, fmt.Errorf("runner: new: metrics: %w", err)
	}
	r.meters = m
	return r, nil
}

// Owner returns the owner ID this runner takes its processors' leases
// under.
func (r *Runner) Owner() string { return r.opts.Ownership.Owner }

// Run runs every processor until ctx ends, then stops them and returns
// once they have all stopped, or once the grace period is over
// ([ErrGracePeriod]). Each processor runs in its own goroutine while this
// process holds its lease, standing by otherwise. A processor's failures
// are retried as its error handler says, while the others go on; one whose
// error handler gives up (or that panics outside its handlers) is marked
// failed and stays down. Run returns early when every processor has
// failed. It returns the errors of the processors that failed, joined, or
// nil.
//
// Stopping cancels the processors' contexts: a projector's batch in
// flight rolls back, a reactor saves the position of the events it has
// handled, and each releases its lease so that a standby process takes
// over at once.
func (r *Runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return fmt.Errorf("runner: run: %w", processing.ErrRunning)
	}
	log := r.opts.Logger.With("owner", r.Owner())
	defer r.observe(ctx, log)()
	procCtx, stopProcs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProcs()

	var g errgroup.Group
	var left atomic.Int64
	left.Store(int64(len(r.procs)))
	allDone := make(chan struct{})
	for _, pr := range r.procs {
		g.Go(func() error {
			err := r.runOne(procCtx, pr)
			r.mu.Lock()
			pr.done, pr.err = true, err
			r.mu.Unlock()
			if left.Add(-1) == 0 {
				close(allDone)
			}
			return nil // a processor's failure is supervision's business
		})
	}
	if len(r.procs) == 0 {
		close(allDone)
	}
	sampleCtx, stopSampling := context.WithCancel(procCtx)
	g.Go(func() error {
		r.sample(sampleCtx, log)
		return nil
	})
	waited := make(chan struct{})
	go func() {
		g.Wait()
		close(waited)
	}()

	select {
	case <-ctx.Done():
		log.InfoContext(ctx, "runner stopping", "grace_period", r.opts.GracePeriod)
	case <-allDone:
	}
	stopProcs()
	stopSampling()
	t := time.NewTimer(r.opts.GracePeriod)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		var names []string
		r.mu.Lock()
		for _, pr := range r.procs {
			if !pr.done {
				names = append(names, pr.p.Name())
			}
		}
		r.mu.Unlock()
		return fmt.Errorf("%w (%v): %s", ErrGracePeriod, r.opts.GracePeriod, strings.Join(names, ", "))
	}
	r.mu.Lock()
	var errs []error
	for _, pr := range r.procs {
		if pr.err != nil {
			errs = append(errs, pr.err)
		}
	}
	r.mu.Unlock()
	return errors.Join(errs...)
}

// runOne runs one processor, turning a panic into its error.
func (r *Runner) runOne(ctx context.Context, pr *proc) error {
	err := processing.Guard(func() error { return pr.p.RunOwned(ctx, r.opts.Ownership) })
	if pe, panicked := err.(*processing.PanicError); panicked {
		// A panic that escaped RunOwned itself (RunOwned's own errors,
		// those of its handlers' panics included, are wrapped).
		err = fmt.Errorf("runner: %s: %w", pr.p.Name(), pe)
		r.opts.Logger.ErrorContext(ctx, "event processor panicked; stopping", "processor", pr.p.Name(), "error", err)
		r.recordFailure(ctx, pr.p.Name(), err)
		return err
	}
	if err == nil && ctx.Err() == nil {
		// Run is not meant to return before ctx ends; it has stopped
		// anyway, without an error.
		r.opts.Logger.WarnContext(ctx, "event processor returned early", "processor", pr.p.Name())
	}
	return err
}
