package main

// P1 and L1: a projector writing one row per event into a table of the
// store's database, catching up on a backlog (P1, against a plain
// database/sql loop doing the same) and following live appends (L1).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// projectionTable is the projection's table, one row per event, the same
// on both sides.
const projectionTable = "bench_projection"

const createProjection = `CREATE TABLE IF NOT EXISTS ` + projectionTable + ` (
	position bigint PRIMARY KEY,
	stream_id text NOT NULL,
	item_id text NOT NULL,
	n bigint NOT NULL
)`

// projectionRow is a row of the projection.
type projectionRow struct {
	position int64
	stream   string
	itemID   string
	n        int
}

// projectionColumns is the column list of the projection's INSERT.
const projectionColumns = " (position, stream_id, item_id, n) VALUES "

// projectionInsert returns a multi-row INSERT of n rows, with placeholders
// from ph (numbered from 1).
func projectionInsert(n int, ph func(int) string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + projectionTable + projectionColumns)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s)", ph(4*i+1), ph(4*i+2), ph(4*i+3), ph(4*i+4))
	}
	return b.String()
}

// projectionArgs returns the arguments of projectionInsert for rows.
func projectionArgs(rows []projectionRow) []any {
	args := make([]any, 0, 4*len(rows))
	for _, r := range rows {
		args = append(args, r.position, r.stream, r.itemID, r.n)
	}
	return args
}

// gormPlaceholder is gorm's placeholder, which it rewrites for the
// database.
func gormPlaceholder(int) string { return "?" }

// benchProjector returns a projector that writes a row per payload event
// into the projection's table the way projector's documentation
// recommends for fast catch-up: the handler collects the rows, the Flush
// hook inserts them with one multi-row INSERT per batch (batches are 1,000
// events, the default), and the Begin hook drops what a failed attempt
// collected. Migrate has run. register, when given, registers the
// handlers instead of the one for payload: each appends its event's row.
func benchProjector(ctx context.Context, s *eventstore.Store, name string, register ...func(*projector.Projector, *[]projectionRow) error) (*projector.Projector, error) {
	var rows []projectionRow
	full := projectionInsert(processing.DefaultBatchSize, gormPlaceholder)
	p, err := projector.New(s, name, projector.Options{
		Processing: processing.Options{ErrorHandler: processing.NoRetry{}},
		Tables:     []string{projectionTable},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(createProjection).Error
		},
		Begin: func(context.Context, *gorm.DB) error {
			rows = rows[:0]
			return nil
		},
		Flush: func(ctx context.Context, tx *gorm.DB) error {
			for chunk := range slices.Chunk(rows, processing.DefaultBatchSize) {
				q := full
				if len(chunk) < processing.DefaultBatchSize {
					q = projectionInsert(len(chunk), gormPlaceholder)
				}
				if err := tx.Exec(q, projectionArgs(chunk)...).Error; err != nil {
					return err
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if len(register) == 0 {
		register = append(register, onProjected[payload])
	}
	for _, r := range register {
		if err := r(p, &rows); err != nil {
			return nil, err
		}
	}
	if err := p.Migrate(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// payloadShape is the shape of payload and of the scale mode's event types
// (scale.go), which have its fields under other names.
type payloadShape interface {
	~struct {
		ID    string
		Title string
		N     int
	}
}

// onProjected registers the handler of events of type E with p: it appends
// the event's row to rows.
func onProjected[E payloadShape](p *projector.Projector, rows *[]projectionRow) error {
	return projector.On(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d E) error {
		pl := payload(d)
		*rows = append(*rows, projectionRow{e.Position, e.StreamID, pl.ID, pl.N})
		return nil
	})
}

// running runs p until stop is called, which returns Run's error.
func running(ctx context.Context, p *projector.Projector) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// countRows checks that the projection has n rows.
func countRows(ctx context.Context, db *sql.DB, n int) error {
	var got int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+projectionTable).Scan(&got); err != nil {
		return fmt.Errorf("count projected rows: %w", err)
	}
	if got != n {
		return fmt.Errorf("projected %d rows, want %d", got, n)
	}
	return nil
}

// catchUp (P1, Cairn): a projector started on a store of p1Events events,
// timed until WaitFor says it has committed the last one.
func catchUp(ctx context.Context, db *database, sz sizes) (sample, error) {
	c, err := newCairn(ctx, db)
	if err != nil {
		return sample{}, err
	}
	if err := fillStreams(ctx, c, "p1", sz.p1Events, sz.fillBatch); err != nil {
		return sample{}, err
	}
	head, err := c.s.Head(ctx)
	if err != nil {
		return sample{}, err
	}
	p, err := benchProjector(ctx, c.s, "p1")
	if err != nil {
		return sample{}, err
	}
	var stop func() error
	smp, err := timed(sz.p1Events, func() error {
		stop = running(ctx, p)
		return p.WaitFor(ctx, head)
	})
	if stop != nil {
		err = errors.Join(err, stop())
	}
	if err != nil {
		return sample{}, err
	}
	return smp, countRows(ctx, db.sql, sz.p1Events)
}

// floorBatch is the floor's batch: as many events as a projector's.
const floorBatch = processing.DefaultBatchSize

// catchUpFloor (P1, floor): plain database/sql reading the floor's events
// in batches of floorBatch, in position order, decoding them, and writing
// each batch's rows with one multi-row INSERT plus the position's UPDATE in
// one transaction.
func catchUpFloor(ctx context.Context, db *database, sz sizes) (sample, error) {
	f, err := newFloor(ctx, db)
	if err != nil {
		return sample{}, err
	}
	if err := fillStreams(ctx, f, "p1", sz.p1Events, sz.fillBatch); err != nil {
		return sample{}, err
	}
	ph := f.d.placeholder
	for _, q := range []string{
		createProjection,
		"CREATE TABLE floor_positions (name text PRIMARY KEY, position bigint NOT NULL)",
		"INSERT INTO floor_positions (name, position) VALUES ('p1', 0)",
	} {
		if _, err := db.sql.ExecContext(ctx, q); err != nil {
			return sample{}, fmt.Errorf("floor: %w", err)
		}
	}
	read := "SELECT " + floorColumns + " FROM " + floorTable + " WHERE position > " + ph(1) + " ORDER BY position LIMIT " + ph(2)
	full := projectionInsert(floorBatch, ph)
	save := "UPDATE floor_positions SET position = " + ph(1) + " WHERE name = 'p1'"

	smp, err := timed(sz.p1Events, func() error {
		var pos int64
		if err := db.sql.QueryRowContext(ctx, "SELECT position FROM floor_positions WHERE name = 'p1'").Scan(&pos); err != nil {
			return err
		}
		rows := make([]projectionRow, 0, floorBatch)
		for {
			rows = rows[:0]
			if err := f.readBatch(ctx, read, pos, &rows); err != nil {
				return err
			}
			if len(rows) == 0 {
				return nil
			}
			q := full
			if len(rows) < floorBatch {
				q = projectionInsert(len(rows), ph)
			}
			pos = rows[len(rows)-1].position
			if err := floorCommit(ctx, db.sql, q, projectionArgs(rows), save, pos); err != nil {
				return err
			}
			if len(rows) < floorBatch {
				return nil
			}
		}
	})
	if err != nil {
		return sample{}, err
	}
	return smp, countRows(ctx, db.sql, sz.p1Events)
}

// readBatch reads up to floorBatch events after pos with read and appends
// their rows to rows.
func (f *floor) readBatch(ctx context.Context, read string, pos int64, rows *[]projectionRow) error {
	rs, err := f.db.QueryContext(ctx, read, pos, floorBatch)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var e floorEvent
		if err := rs.Scan(&e.position, &e.id, &e.stream, &e.version, &e.typ, &e.schema,
			&e.data, &e.metadata, &e.causationID, &e.correlationID, &e.recordedAt); err != nil {
			return err
		}
		if err := json.Unmarshal(e.data, &e.payload); err != nil {
			return fmt.Errorf("floor: decode position %d: %w", e.position, err)
		}
		*rows = append(*rows, projectionRow{e.position, e.stream, e.payload.ID, e.payload.N})
	}
	return rs.Err()
}

// floorCommit inserts a batch's rows and saves the position in one
// transaction.
func floorCommit(ctx context.Context, db *sql.DB, insert string, args []any, save string, pos int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, save, pos); err != nil {
		return err
	}
	return tx.Commit()
}

// extraP99 is the key of L1's 99th percentile, in milliseconds.
const extraP99 = "p99"

// l1Streams is how many streams L1's appends go round.
const l1Streams = 10

// liveLatency (L1): with the projector running and caught up, l1Appends
// sequential single-event appends, each timed from Append returning to
// WaitFor returning (the processor signals WaitFor's waiters once the
// batch's transaction has committed). Reports the median in milliseconds,
// and the 99th percentile as an extra.
func liveLatency(ctx context.Context, db *database, sz sizes) (sample, error) {
	c, err := newCairn(ctx, db)
	if err != nil {
		return sample{}, err
	}
	p, err := benchProjector(ctx, c.s, "l1")
	if err != nil {
		return sample{}, err
	}
	stop := running(ctx, p)
	lat, err := appendAndWait(ctx, c.s, p, sz.l1Appends)
	if err = errors.Join(err, stop()); err != nil {
		return sample{}, err
	}
	if err := countRows(ctx, db.sql, sz.l1Appends+1); err != nil {
		return sample{}, err
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return sample{
		value:  ms(lat[len(lat)/2]),
		extras: map[string]float64{extraP99: ms(lat[(len(lat)*99)/100])},
	}, nil
}

// appendAndWait appends one warm-up event and then n measured ones, one at
// a time, waiting for p to commit each, and returns the measured waits.
func appendAndWait(ctx context.Context, s *eventstore.Store, p *projector.Projector, n int) ([]time.Duration, error) {
	evs := payloads(0, n+1)
	versions := make([]int64, l1Streams)
	lat := make([]time.Duration, 0, n)
	for i, ev := range evs {
		k := i % l1Streams
		rec, err := s.Append(ctx, streamName("l1", k), event.Exact(versions[k]), []any{ev})
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := p.WaitFor(ctx, rec[0].Position); err != nil {
			return nil, err
		}
		if i > 0 {
			lat = append(lat, time.Since(start))
		}
		versions[k]++
	}
	return lat, nil
}
