package main

// S1: per-stream concurrency (processing.Options.Concurrency). A reactor
// whose side effect takes 20 ms (a mail, an HTTP call; here time.Sleep)
// reacts to 10,000 events in 1,000 streams, with Concurrency 1, 8, 32 and
// 128, each a reactor of its own over the same events; and, for the
// ceiling of the processing itself, with no side effect at Concurrency 1
// and 32.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// scaleOutSizes are the amounts of work of S1.
type scaleOutSizes struct {
	events, streams int
	// serial is how many events Concurrency 1 handles (its rate is one
	// event per side effect however many there are: the first 1,000 of
	// the full size take 20 s already).
	serial int
	effect time.Duration // the side effect's time
}

var (
	scaleOutFull  = scaleOutSizes{events: 10_000, streams: 1_000, serial: 1_000, effect: 20 * time.Millisecond}
	scaleOutQuick = scaleOutSizes{events: 2_000, streams: 200, serial: 200, effect: 20 * time.Millisecond}
	scaleOutTiny  = scaleOutSizes{events: 60, streams: 10, serial: 10, effect: time.Millisecond}
)

// scaleOutLevel is one reactor S1 runs: its Concurrency, and whether its
// handler has the side effect (without it, the figure is the ceiling of
// the processing itself: reads, dispatch, position saves).
type scaleOutLevel struct {
	n      int
	effect bool
}

// scaleOutLevels are the reactors S1 runs; the one the table reports comes
// first, the others go to the notes.
var scaleOutLevels = []scaleOutLevel{{32, true}, {1, true}, {8, true}, {128, true}, {1, false}, {32, false}}

func (l scaleOutLevel) key() string {
	k := "c" + strconv.Itoa(l.n)
	if !l.effect {
		k += "-noeffect"
	}
	return k
}

func (l scaleOutLevel) label() string {
	s := "Concurrency " + strconv.Itoa(l.n)
	if !l.effect {
		s += " without the side effect"
	}
	return s
}

// scaleOutWorkload is S1.
func scaleOutWorkload() workload {
	perS := func(v float64) string { return formatValue(v) + " events/s" }
	var extras []extra
	for _, l := range scaleOutLevels[1:] {
		extras = append(extras, extra{key: l.key(), label: l.label(), format: perS})
	}
	return workload{
		id:     "S1",
		title:  "reactor, 20 ms side effect, 10,000 events in 1,000 streams (full size), Concurrency 32 (others in the notes)",
		unit:   defaultUnit,
		cairn:  scaleOut,
		extras: extras,
	}
}

// scaleOut (S1) fills the store with sz's events, appended round-robin
// over its streams (one event per stream per transaction of many
// appends), and then, for each of scaleOutLevels, runs a reactor with that
// Concurrency from the first event until it has passed the last (or, at
// Concurrency 1, the serial first), timed as reactAt says. Its handler
// sleeps for the side effect and checks that it sees each
// stream's versions in order, one after another (S1 fails if not).
func scaleOut(ctx context.Context, db *database, szs sizes) (sample, error) {
	sz := szs.s1
	c, err := newCairn(ctx, db)
	if err != nil {
		return sample{}, err
	}
	if err := fillRoundRobin(ctx, c.s, sz); err != nil {
		return sample{}, err
	}
	smp := sample{extras: map[string]float64{}}
	for i, l := range scaleOutLevels {
		events, effect := sz.events, time.Duration(0)
		if l.effect {
			effect = sz.effect
			if l.n == 1 {
				events = min(sz.serial, sz.events)
			}
		}
		rate, problem, err := reactAt(ctx, c.s, l.key(), l.n, effect, events)
		if err != nil {
			return sample{}, fmt.Errorf("%s: %w", l.label(), err)
		}
		if problem != "" {
			return sample{}, fmt.Errorf("%s: %s", l.label(), problem)
		}
		if i == 0 {
			smp.value = rate
		} else {
			smp.extras[l.key()] = rate
		}
	}
	return smp, nil
}

// fillRoundRobin appends sz.events payloads to sz.streams streams, one
// event per stream per round, each round one transaction.
func fillRoundRobin(ctx context.Context, s *eventstore.Store, sz scaleOutSizes) error {
	meta := event.WithMetadata(benchMetadata())
	for first := 0; first < sz.events; first += sz.streams {
		evs := payloads(first, min(sz.streams, sz.events-first))
		reqs := make([]event.AppendRequest, len(evs))
		for i, p := range evs {
			reqs[i] = event.AppendRequest{StreamID: streamName("s1", i), Expected: event.Exact(int64(first / sz.streams)), Events: []any{p}, Options: []event.AppendOption{meta}}
		}
		err := s.Transaction(ctx, func(tx *gorm.DB) error {
			_, err := s.AppendAllTx(ctx, tx, reqs)
			return err
		})
		if err != nil {
			return fmt.Errorf("fill round %d: %w", first/sz.streams, err)
		}
	}
	return nil
}

// reactAt runs a reactor with Concurrency n over the store until its
// handler has handled the first events events (all of them, for n > 1),
// and returns its rate, timed from the start of its Run to the return of
// the last of those handlers (not to the save of its position: at
// Concurrency 1 it saves once per batch of 1,000), and a problem its
// handler saw (a stream's versions out of order), if any.
func reactAt(ctx context.Context, s *eventstore.Store, name string, n int, effect time.Duration, events int) (rate float64, problem string, err error) {
	r, err := reactor.New(s, "s1-"+name, reactor.Options{Processing: processing.Options{
		Concurrency: n, ErrorHandler: processing.NoRetry{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}})
	if err != nil {
		return 0, "", err
	}
	var mu sync.Mutex
	last := map[string]int64{}
	handled := 0
	var end time.Time
	reached := make(chan struct{})
	reactor.MustOn(r, func(ctx context.Context, e event.Event, _ payload, _ *reactor.Emitter) error {
		if effect > 0 {
			time.Sleep(effect) // the side effect
		}
		mu.Lock()
		defer mu.Unlock()
		if v := last[e.StreamID]; e.Version != v+1 && problem == "" {
			problem = fmt.Sprintf("stream %s: version %d after %d", e.StreamID, e.Version, v)
		}
		last[e.StreamID] = e.Version
		if handled++; handled == events {
			end = time.Now()
			close(reached)
		}
		return nil
	})
	if err := r.Migrate(ctx); err != nil {
		return 0, "", err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(rctx) }()
	select {
	case <-reached:
	case err = <-done:
		stop()
		return 0, "", fmt.Errorf("the reactor stopped: %w", err)
	case <-ctx.Done():
	}
	stop()
	if err := <-done; err != nil {
		return 0, "", err
	}
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	mu.Lock()
	defer mu.Unlock()
	return float64(events) / end.Sub(start).Seconds(), problem, nil
}
