package main

// L2: read-your-writes. A command writes an event and a query that waits
// for it (processing.WaitForPositions, the wait behind the todo app's
// Cairn-After header) answers with the projected change.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"gorm.io/driver/postgres"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// extraWaitP50 and extraWaitP99 are the keys of L2's figures for the wait
// and the query alone, from the command's return, in milliseconds.
const (
	extraWaitP50 = "wait_p50"
	extraWaitP99 = "wait_p99"
)

// rywWorkload is L2.
func rywWorkload() workload {
	ms := func(v float64) string { return formatMs(v) + " ms" }
	return workload{
		id:     "L2",
		title:  "read-your-writes: command → waiting query answers with the change (PostgreSQL: split stores)",
		unit:   "ms, median",
		cairn:  readYourWrites,
		format: formatMs,
		extras: []extra{
			{key: extraP99, label: "p99", format: ms},
			{key: extraWaitP50, label: "wait + query alone, median", format: ms},
			{key: extraWaitP99, label: "wait + query alone, p99", format: ms},
		},
	}
}

// rywWarmUp is how many rounds L2 runs before it measures: the runner
// takes its lease, the listeners connect, statements get prepared.
const rywWarmUp = 10

// readYourWrites (L2): a projector runs under a runner (with its lease,
// as in a processors process) and writes a row per event. Each of
// l1Appends rounds, one after another, appends one event to one of
// l1Streams streams at its expected version (the command's write), waits
// with processing.WaitForPositions until the projector has passed the
// event's position, and reads the event's row from the projection (the
// query), which must be there. A round is timed from the append's start to
// the query's answer; the wait and the query alone are reported as extras.
//
// On PostgreSQL it runs split, as the todo app's web and processors
// processes do: the command, the wait and the query go through a second
// Store on a connection pool of its own, which the projector's commits
// wake only through NOTIFY (never through the in-process signal of the
// projector's store). On SQLite it runs all in one store, the
// all-in-one app's shape, woken by the in-process signal.
func readYourWrites(ctx context.Context, db *database, sz sizes) (sample, error) {
	c, err := newCairn(ctx, db)
	if err != nil {
		return sample{}, err
	}
	p, err := benchProjector(ctx, c.s, "l2")
	if err != nil {
		return sample{}, err
	}
	r, err := runner.New(c.s, runner.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p)
	if err != nil {
		return sample{}, err
	}
	rctx, stopRunner := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	stop := func() error {
		stopRunner()
		return <-done
	}

	web, closeWeb, err := webStore(ctx, db, c.s)
	if err != nil {
		return sample{}, errors.Join(err, stop())
	}
	total, waits, err := commandAndQuery(ctx, web, db, sz.l1Appends)
	if err = errors.Join(err, stop(), closeWeb()); err != nil {
		return sample{}, err
	}
	slices.Sort(total)
	slices.Sort(waits)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p99 := func(ds []time.Duration) float64 { return ms(ds[(len(ds)*99)/100]) }
	return sample{
		value: ms(total[len(total)/2]),
		extras: map[string]float64{
			extraP99:     p99(total),
			extraWaitP50: ms(waits[len(waits)/2]),
			extraWaitP99: p99(waits),
		},
	}, nil
}

// webStore returns the store the command and the query go through: on
// PostgreSQL, a new Store on a pool of its own, with closeWeb closing it;
// on SQLite, the processors' store itself.
func webStore(ctx context.Context, db *database, processors *eventstore.Store) (web *eventstore.Store, closeWeb func() error, err error) {
	if db.kind != kindPostgres {
		return processors, func() error { return nil }, nil
	}
	d, ok := db.gorm.Dialector.(*postgres.Dialector)
	if !ok || d.Config == nil || d.Config.DSN == "" {
		return nil, nil, fmt.Errorf("L2: the PostgreSQL database has no DSN to open a second pool with")
	}
	g, err := eventstore.OpenPostgres(d.Config.DSN)
	if err != nil {
		return nil, nil, err
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, nil, err
	}
	s, err := eventstore.New(g, processors.Registry(), eventstore.Options{TablePrefix: "cairn_"})
	if err != nil {
		return nil, nil, errors.Join(err, sqlDB.Close())
	}
	return s, sqlDB.Close, nil
}

// commandAndQuery runs rywWarmUp and then n measured rounds on web (see
// readYourWrites), and returns each measured round's total time and the
// time of its wait and query alone.
func commandAndQuery(ctx context.Context, web *eventstore.Store, db *database, n int) (total, waits []time.Duration, err error) {
	query := "SELECT n FROM " + projectionTable + " WHERE position = ?"
	evs := payloads(0, n+rywWarmUp)
	versions := make([]int64, l1Streams)
	for i, ev := range evs {
		k := i % l1Streams
		start := time.Now()
		rec, err := web.Append(ctx, streamName("l2", k), event.Exact(versions[k]), []any{ev})
		if err != nil {
			return nil, nil, err
		}
		versions[k]++
		written := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = processing.WaitForPositions(wctx, web, rec[0].Position, "l2")
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("round %d: %w", i, err)
		}
		var got int
		if err := web.DB().WithContext(ctx).Raw(query, rec[0].Position).Row().Scan(&got); err != nil {
			return nil, nil, fmt.Errorf("round %d: the query does not show the event at %d: %w", i, rec[0].Position, err)
		}
		if got != ev.N {
			return nil, nil, fmt.Errorf("round %d: the query shows n = %d, want %d", i, got, ev.N)
		}
		if i >= rywWarmUp {
			end := time.Now()
			total = append(total, end.Sub(start))
			waits = append(waits, end.Sub(written))
		}
	}
	return total, waits, nil
}
