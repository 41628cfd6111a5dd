package processing

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"

	"github.com/cairnhq/cairn/event"
)

// Start is where a processor that has no saved position yet starts
// ([Options.Start]):
//
//   - [FromBeginning], the zero value: from the first event of the store.
//     A projector needs every event.
//   - [FromHead]: from the head of the store at the moment the processor
//     is first registered — its first Migrate or Run, whichever comes
//     first — so it handles only the events stored after that. A reactor
//     added to a system with a year of history, one that sends an email
//     per event, must not send a year of emails on its first run.
//   - [After] a position: from the event after it.
//
// The start is recorded once, as the processor's saved position, in the
// same row its position is kept in: whoever creates the row first (this
// process or another) decides, and from then on the processor resumes from
// its saved position like any other. A restart never jumps ahead to a new
// head, however long the processor was down: the events stored meanwhile
// are handled. [Processor.Reset] takes a processor back to the first
// event, whatever its Start.
//
// A processor that does not start from the beginning needs a store that
// can record its start (*eventstore.Store can): [New] fails with
// [ErrInvalid] otherwise.
type Start struct {
	kind  startKind
	after int64
}

type startKind uint8

const (
	startBeginning startKind = iota
	startHead
	startAfter
)

// FromBeginning starts a new processor from the first event: the default.
func FromBeginning() Start { return Start{} }

// FromHead starts a new processor after the last event stored when it is
// first registered.
func FromHead() Start { return Start{kind: startHead} }

// After starts a new processor after the given position: at the first
// event whose position is greater.
func After(position int64) Start { return Start{kind: startAfter, after: position} }

// String describes s: "beginning", "head" or "after 42".
func (s Start) String() string {
	switch s.kind {
	case startHead:
		return "head"
	case startAfter:
		return "after " + strconv.FormatInt(s.after, 10)
	}
	return "beginning"
}

// startStore is what a processor that does not start from the beginning
// needs of its store. *eventstore.Store implements it.
type startStore interface {
	// Head returns the position of the newest event.
	Head(ctx context.Context) (int64, error)
	// CreatePosition creates the processor's row at position unless it
	// has one, and reports whether it did.
	CreatePosition(ctx context.Context, name string, position int64) (created bool, err error)
}

// streamStore is what a processor limited to some streams needs of its
// store. *eventstore.Store implements it.
type streamStore interface {
	// SubscribeBatchesOf is SubscribeBatches of the streams f selects.
	SubscribeBatchesOf(ctx context.Context, f event.StreamFilter, after int64, limit int, types ...string) iter.Seq2[event.Batch, error]
}

// validateMore checks the options of start.go, pause.go and middleware.go.
func (o Options) validateMore() error {
	var errs []error
	if o.Start.kind == startAfter && o.Start.after < 0 {
		errs = append(errs, fmt.Errorf("%w: start after the negative position %d", ErrInvalid, o.Start.after))
	}
	if o.Streams.ID != "" && o.Streams.Prefix != "" {
		errs = append(errs, fmt.Errorf("%w: %s: set either a stream ID or a prefix", ErrInvalid, o.Streams))
	}
	for i, m := range o.Middleware {
		if m == nil {
			errs = append(errs, fmt.Errorf("%w: middleware %d is nil", ErrInvalid, i))
		}
	}
	return errors.Join(errs...)
}

// supportedBy checks that store and h can do what the options ask.
func (o Options) supportedBy(store Store, h Handler) error {
	var errs []error
	if _, ok := store.(startStore); !ok && o.Start.kind != startBeginning {
		errs = append(errs, fmt.Errorf("start from %s: the store (%T) cannot record a start position", o.Start, store))
	}
	if _, ok := store.(streamStore); !ok && !o.Streams.All() {
		errs = append(errs, fmt.Errorf("limited to %s: the store (%T) cannot filter streams", o.Streams, store))
	}
	if _, ok := h.(wrapper); !ok && len(o.Middleware) > 0 {
		errs = append(errs, errors.New("middleware needs a processor with typed handlers (NewKind)"))
	}
	return errors.Join(errs...)
}

// register records the processor's start position, if it does not start
// from the beginning and has no row yet.
func (p *Processor) register(ctx context.Context) error {
	start := p.opts.Start
	if start.kind == startBeginning || p.registered.Load() || p.parts != nil {
		return nil
	}
	ss := p.store.(startStore) // checked by New
	pos := start.after
	if start.kind == startHead {
		var err error
		if pos, err = ss.Head(ctx); err != nil {
			return fmt.Errorf("processing: register %s: %w", p.name, err)
		}
	}
	created, err := ss.CreatePosition(ctx, p.name, pos)
	if err != nil {
		return fmt.Errorf("processing: register %s: %w", p.name, err)
	}
	if created {
		p.opts.Logger.InfoContext(ctx, "event processor registered", "processor", p.name, "start", start.String(), "position", pos)
	}
	p.registered.Store(true)
	return nil
}

// loadPosition is the store's LoadPosition, after the start position is
// recorded.
func (p *Processor) loadPosition(ctx context.Context) (position, epoch int64, err error) {
	if err := p.register(ctx); err != nil {
		return 0, 0, err
	}
	return p.store.LoadPosition(ctx, p.name)
}

// subscribe yields the batches of the processor's streams after a
// position.
func (p *Processor) subscribe(ctx context.Context, after int64, types []string) iter.Seq2[event.Batch, error] {
	if p.opts.Streams.All() {
		return p.filter(ctx, p.store.SubscribeBatches(ctx, after, p.opts.BatchSize, types...))
	}
	return p.filter(ctx, p.store.(streamStore).SubscribeBatchesOf(ctx, p.opts.Streams, after, p.opts.BatchSize, types...))
}
