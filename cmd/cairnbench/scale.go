package main

// The scale mode (-scale): how the cost of each operation grows with the
// store. One database per target is filled step by step to each of the
// sizes asked for (events across scaleStreams streams, a mix of
// len(scaleTypes()) types, one of them rare), and at each size the same
// operations are measured: single appends (one writer, and eight),
// a stream read, a read of the rare type across the store, a projector's
// catch-up, aggregate loads with and without a snapshot, and the bytes on
// disk per event.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/projector"
)

const (
	// scaleStreams is how many streams the fill spreads its events over.
	scaleStreams = 100_000
	// scalePerAppend is how many events a fill append writes to a stream.
	scalePerAppend = 10
	// scaleRareEvery makes every scaleRareEvery-th event of the fill the
	// rare type: 0.1% of the store.
	scaleRareEvery = 1000
	// scaleFillWriters append concurrently while filling (group commit
	// makes the fill fast; it is not measured).
	scaleFillWriters = 8
	// scaleCatchUp is how many of the newest events the projector catches
	// up on at each size.
	scaleCatchUp = 100_000
	// scaleW3Writers append concurrently in W3.
	scaleW3Writers = 8
	// scaleStreamEvents is the length of the stream R1 reads and of the
	// aggregates loaded.
	scaleStreamEvents = 1000
)

// scaleWork is how much each measurement at a size does.
type scaleWork struct {
	w1Appends int // single-event appends of W1
	w3Appends int // single-event appends of each W3 writer
	r1Reads   int
	loads     int // aggregate loads from the first event
	snapLoads int // aggregate loads from a snapshot
}

func fullScaleWork() scaleWork {
	return scaleWork{w1Appends: 500, w3Appends: 100, r1Reads: 20, loads: 20, snapLoads: 200}
}

// tinyScaleWork is for smoke tests.
func tinyScaleWork() scaleWork {
	return scaleWork{w1Appends: 20, w3Appends: 5, r1Reads: 2, loads: 2, snapLoads: 5}
}

// The scale mode's event types: payload's fields under twenty names.
type (
	scaleT00 payload
	scaleT01 payload
	scaleT02 payload
	scaleT03 payload
	scaleT04 payload
	scaleT05 payload
	scaleT06 payload
	scaleT07 payload
	scaleT08 payload
	scaleT09 payload
	scaleT10 payload
	scaleT11 payload
	scaleT12 payload
	scaleT13 payload
	scaleT14 payload
	scaleT15 payload
	scaleT16 payload
	scaleT17 payload
	scaleT18 payload
	// scaleRare is the rare type.
	scaleRare payload
)

// scaleType is one event type of the scale mode.
type scaleType struct {
	name     string
	wrap     func(payload) any
	register func(*event.Registry, string) error
	project  func(*projector.Projector, *[]projectionRow) error
}

func scaleTypeOf[E payloadShape]() scaleType {
	return scaleType{
		wrap:     func(p payload) any { return E(p) },
		register: func(reg *event.Registry, name string) error { return event.Register[E](reg, name) },
		project:  onProjected[E],
	}
}

// scaleTypes returns the types, the rare one last.
func scaleTypes() []scaleType {
	ts := []scaleType{
		scaleTypeOf[scaleT00](), scaleTypeOf[scaleT01](), scaleTypeOf[scaleT02](), scaleTypeOf[scaleT03](),
		scaleTypeOf[scaleT04](), scaleTypeOf[scaleT05](), scaleTypeOf[scaleT06](), scaleTypeOf[scaleT07](),
		scaleTypeOf[scaleT08](), scaleTypeOf[scaleT09](), scaleTypeOf[scaleT10](), scaleTypeOf[scaleT11](),
		scaleTypeOf[scaleT12](), scaleTypeOf[scaleT13](), scaleTypeOf[scaleT14](), scaleTypeOf[scaleT15](),
		scaleTypeOf[scaleT16](), scaleTypeOf[scaleT17](), scaleTypeOf[scaleT18](), scaleTypeOf[scaleRare](),
	}
	for i := range ts {
		ts[i].name = fmt.Sprintf("scale.t%02d", i)
	}
	ts[len(ts)-1].name = "scale.rare"
	return ts
}

// scaleStore is a target's database being filled.
type scaleStore struct {
	db       *database
	s        *eventstore.Store
	types    []scaleType
	versions []int64 // of each fill stream
	filled   int     // events stored
	rare     int     // events of the rare type stored
	plain    *aggregate.Repository[Account]
	snapped  *aggregate.Repository[Account]
	work     scaleWork
}

func scaleStreamName(k int) string { return fmt.Sprintf("scale-%06d", k) }

// newScaleStore creates the store's tables in db and the streams every
// size measures: R1's stream and two accounts, one with a snapshot.
func newScaleStore(ctx context.Context, db *database, work scaleWork) (*scaleStore, error) {
	reg := event.NewRegistry(event.RegistryOptions{})
	st := &scaleStore{db: db, types: scaleTypes(), versions: make([]int64, scaleStreams), work: work}
	errs := []error{event.Register[payload](reg, payloadType), registerAccountEvents(reg)}
	for _, t := range st.types {
		errs = append(errs, t.register(reg, t.name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s, err := eventstore.New(db.gorm, reg, eventstore.Options{TablePrefix: "cairn_"})
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	st.s = s
	if st.plain, err = aggregate.NewRepository[Account](s, "plain", aggregate.Options{}); err != nil {
		return nil, err
	}
	if st.snapped, err = aggregate.NewRepository[Account](s, "snapped", aggregate.Options{SnapshotEvery: scaleStreamEvents}); err != nil {
		return nil, err
	}
	for _, repo := range []*aggregate.Repository[Account]{st.plain, st.snapped} {
		if _, err := newAccount[Account, *Account](ctx, repo, scaleStreamEvents); err != nil {
			return nil, err
		}
	}
	if err := fill(ctx, &cairnSubject{s: s}, "scale-r1", payloads(0, scaleStreamEvents), scaleStreamEvents); err != nil {
		return nil, err
	}
	st.filled = 3 * scaleStreamEvents
	return st, nil
}

// fillTo appends events to the fill streams until the store holds n.
func (st *scaleStore) fillTo(ctx context.Context, n int, log io.Writer) error {
	start := time.Now()
	for st.filled < n {
		round := min(n-st.filled, scaleStreams*scalePerAppend)
		base := st.filled
		var mu sync.Mutex
		rareAdded := 0
		g, gctx := errgroup.WithContext(ctx)
		for w := range scaleFillWriters {
			g.Go(func() error {
				added := 0
				for k := w; k*scalePerAppend < round; k += scaleFillWriters {
					cnt := min(scalePerAppend, round-k*scalePerAppend)
					first := base + k*scalePerAppend
					evs := make([]any, cnt)
					for i := range evs {
						g := first + i
						t := st.types[g%(len(st.types)-1)]
						if g%scaleRareEvery == scaleRareEvery-1 {
							t = st.types[len(st.types)-1]
							added++
						}
						evs[i] = t.wrap(payloads(g, 1)[0])
					}
					if _, err := st.s.Append(gctx, scaleStreamName(k), event.Exact(st.versions[k]), evs,
						event.WithMetadata(benchMetadata())); err != nil {
						return fmt.Errorf("fill %s: %w", scaleStreamName(k), err)
					}
					st.versions[k] += int64(cnt)
				}
				mu.Lock()
				rareAdded += added
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		st.filled += round
		st.rare += rareAdded
		rate := float64(st.filled) / time.Since(start).Seconds()
		fmt.Fprintf(log, "scale: %s filled to %d events (%.0f events/s)\n", st.db.kind, st.filled, rate)
	}
	return nil
}

// settle brings the database to rest after a fill, before the
// measurements: on PostgreSQL a VACUUM ANALYZE of the events table (which
// autovacuum would otherwise start after the bulk load, in the middle of
// the measurements) and a CHECKPOINT (the fill's dirty pages written now,
// not under the measured appends); on SQLite a checkpoint that empties the
// WAL. The figures are then the cost at the store's size, not the
// aftermath of loading it.
func (st *scaleStore) settle(ctx context.Context) error {
	stmts := []string{"PRAGMA wal_checkpoint(TRUNCATE)"}
	if st.db.kind == kindPostgres {
		stmts = []string{"VACUUM ANALYZE cairn_events", "CHECKPOINT"}
	}
	for _, q := range stmts {
		if _, err := st.db.sql.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("settle: %s: %w", q, err)
		}
	}
	return nil
}

// scaleRow is what one size measured on one target.
type scaleRow struct {
	events          int
	w1Median, w1P99 time.Duration
	w3Median, w3P99 time.Duration
	r1              float64 // events/s
	rare            float64 // events/s of the rare-type read
	rareTime        time.Duration
	// The same read with the type index (eventstore.Options.TypeIndex),
	// built for it and dropped after it, and how long building it took.
	rareIndexed             float64
	rareIndexedTime         time.Duration
	indexBuild              time.Duration
	catchUp                 float64 // events/s
	loadPlain, loadSnapshot float64 // loads/s
	bytesPerEvent           float64
}

// measure measures every operation at the store's current size.
func (st *scaleStore) measure(ctx context.Context, rng *rand.Rand) (scaleRow, error) {
	row := scaleRow{events: st.filled}
	var err error

	// W1: one writer, single-event appends to random existing streams.
	lat := make([]time.Duration, 0, st.work.w1Appends)
	for i := range st.work.w1Appends {
		k := rng.IntN(scaleStreams)
		d, err := st.appendOne(ctx, k, st.filled+i)
		if err != nil {
			return row, err
		}
		lat = append(lat, d)
	}
	st.filled += st.work.w1Appends
	row.w1Median, row.w1P99 = percentiles(lat)

	// W3: scaleW3Writers writers, each on its own streams.
	var mu sync.Mutex
	lat = lat[:0]
	picks := make([][]int, scaleW3Writers)
	for w := range picks {
		for range st.work.w3Appends {
			// Streams k ≡ w (mod writers): no two writers share one.
			picks[w] = append(picks[w], w+scaleW3Writers*rng.IntN(scaleStreams/scaleW3Writers))
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for w := range scaleW3Writers {
		g.Go(func() error {
			for i, k := range picks[w] {
				d, err := st.appendOne(gctx, k, st.filled+w*st.work.w3Appends+i)
				if err != nil {
					return err
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return row, err
	}
	st.filled += scaleW3Writers * st.work.w3Appends
	row.w3Median, row.w3P99 = percentiles(lat)

	// R1: read a 1,000-event stream.
	c := &cairnSubject{s: st.s}
	var sk sink
	smp, err := timed(st.work.r1Reads*scaleStreamEvents, func() error {
		for range st.work.r1Reads {
			n, err := c.readStream(ctx, "scale-r1", sk.take)
			if err == nil && n != scaleStreamEvents {
				err = fmt.Errorf("read %d events of scale-r1, want %d", n, scaleStreamEvents)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return row, err
	}
	row.r1 = smp.value

	// The rare type, read across the whole store in pages of 1,000:
	// without the type index (the store's default), then with it.
	if row.rareTime, err = st.readRare(ctx); err != nil {
		return row, err
	}
	row.rare = float64(st.rare) / row.rareTime.Seconds()
	index := "cairn_events_type_position_idx"
	start := time.Now()
	if _, err := st.db.sql.ExecContext(ctx, "CREATE INDEX "+index+" ON cairn_events (type, position)"); err != nil {
		return row, fmt.Errorf("create the type index: %w", err)
	}
	row.indexBuild = time.Since(start)
	if row.rareIndexedTime, err = st.readRare(ctx); err != nil {
		return row, err
	}
	row.rareIndexed = float64(st.rare) / row.rareIndexedTime.Seconds()
	if _, err := st.db.sql.ExecContext(ctx, "DROP INDEX "+index); err != nil {
		return row, fmt.Errorf("drop the type index: %w", err)
	}

	if row.catchUp, err = st.catchUp(ctx); err != nil {
		return row, err
	}

	// Aggregate loads, from the first event and from a snapshot.
	for _, l := range []struct {
		repo  *aggregate.Repository[Account]
		loads int
		out   *float64
	}{{st.plain, st.work.loads, &row.loadPlain}, {st.snapped, st.work.snapLoads, &row.loadSnapshot}} {
		smp, err := timed(l.loads, func() error {
			for range l.loads {
				a, err := l.repo.Load(ctx, accountID)
				if err != nil {
					return err
				}
				if a.Version() != scaleStreamEvents {
					return fmt.Errorf("loaded an account at version %d, want %d", a.Version(), scaleStreamEvents)
				}
			}
			return nil
		})
		if err != nil {
			return row, err
		}
		*l.out = smp.value
	}

	size, err := st.db.size(ctx)
	if err != nil {
		return row, fmt.Errorf("size on disk: %w", err)
	}
	row.bytesPerEvent = float64(size) / float64(st.filled)
	return row, nil
}

// readRare reads every event of the rare type in pages of 1,000 and
// returns how long that took.
func (st *scaleStore) readRare(ctx context.Context) (time.Duration, error) {
	rareName := st.types[len(st.types)-1].name
	start := time.Now()
	got := 0
	var after int64
	for {
		page := 0
		for e, err := range st.s.ReadAll(ctx, after, minimalPage, rareName) {
			if err != nil {
				return 0, err
			}
			after = e.Position
			page++
		}
		got += page
		if page < minimalPage {
			break
		}
	}
	took := time.Since(start)
	if got != st.rare {
		return 0, fmt.Errorf("read %d events of the rare type, want %d", got, st.rare)
	}
	return took, nil
}

// appendOne appends the g-th payload to fill stream k and returns how long
// the append took.
func (st *scaleStore) appendOne(ctx context.Context, k, g int) (time.Duration, error) {
	ev := st.types[g%(len(st.types)-1)].wrap(payloads(g, 1)[0])
	start := time.Now()
	_, err := st.s.Append(ctx, scaleStreamName(k), event.Exact(st.versions[k]), []any{ev}, event.WithMetadata(benchMetadata()))
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", scaleStreamName(k), err)
	}
	st.versions[k]++
	return d, nil
}

// catchUp runs a projector of every type over the newest scaleCatchUp
// events, writing a row per event, and returns its rate.
func (st *scaleStore) catchUp(ctx context.Context) (float64, error) {
	head, err := st.s.Head(ctx)
	if err != nil {
		return 0, err
	}
	from := max(0, head-scaleCatchUp)
	name := "scale-catchup-" + strconv.Itoa(st.filled)
	regs := make([]func(*projector.Projector, *[]projectionRow) error, len(st.types))
	for i, t := range st.types {
		regs[i] = t.project
	}
	p, err := benchProjector(ctx, st.s, name, regs...)
	if err != nil {
		return 0, err
	}
	// Start the projector at from: its row is new, at epoch 0.
	if _, _, err := st.s.LoadPosition(ctx, name); err != nil {
		return 0, err
	}
	if ok, err := st.s.SavePosition(ctx, name, 0, 0, from); err != nil || !ok {
		return 0, fmt.Errorf("start %s at %d: %v, %v", name, from, ok, err)
	}
	if err := st.db.gorm.WithContext(ctx).Exec("DELETE FROM " + projectionTable).Error; err != nil {
		return 0, err
	}
	began := time.Now()
	stop := running(ctx, p)
	err = p.WaitFor(ctx, head)
	elapsed := time.Since(began)
	if serr := stop(); err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	if err != nil {
		return 0, err
	}
	return float64(head-from) / elapsed.Seconds(), nil
}

// percentiles returns the median and the 99th percentile of ds.
func percentiles(ds []time.Duration) (median, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99)/100]
}

// scaleResult is what the scale mode measured on one target.
type scaleResult struct {
	target string
	rows   []scaleRow
}

// executeScale runs the scale mode on every configured target.
func executeScale(ctx context.Context, cfg config, log io.Writer) ([]scaleResult, []string, error) {
	ts, err := openTargets(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	var out []scaleResult
	for _, t := range ts.list {
		work := fullScaleWork()
		if cfg.sizeName == "tiny" {
			work = tinyScaleWork()
		}
		res, err := scaleTarget(ctx, t, cfg.scale, work, log)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("scale on %s: %w", t.name, err), ts.close())
		}
		out = append(out, res)
	}
	return out, ts.about, ts.close()
}

func scaleTarget(ctx context.Context, t target, sizes []int, work scaleWork, log io.Writer) (res scaleResult, err error) {
	db, err := t.open(ctx)
	if err != nil {
		return scaleResult{}, err
	}
	defer func() { err = errors.Join(err, db.drop()) }()
	st, err := newScaleStore(ctx, db, work)
	if err != nil {
		return scaleResult{}, err
	}
	res.target = t.name
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range sizes {
		if err := st.fillTo(ctx, n, log); err != nil {
			return res, err
		}
		if err := st.settle(ctx); err != nil {
			return res, fmt.Errorf("at %d events: %w", n, err)
		}
		row, err := st.measure(ctx, rng)
		if err != nil {
			return res, fmt.Errorf("at %d events: %w", n, err)
		}
		fmt.Fprintf(log, "scale: %s at %d events measured\n", t.name, n)
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// writeScaleReport writes one markdown table per target: a line per
// measurement, a column per size.
func writeScaleReport(w io.Writer, about []string, results []scaleResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cairnbench -scale: %d streams, %d event types (one at %.1f%%), two-key metadata on every append",
		scaleStreams, len(scaleTypes()), 100.0/scaleRareEvery)
	for _, d := range about {
		b.WriteString("; " + d)
	}
	b.WriteString("\n")
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) }
	lines := []struct {
		label string
		cell  func(scaleRow) string
	}{
		{"W1 1 writer, 1 event/append: median / p99 ms", func(r scaleRow) string { return ms(r.w1Median) + " / " + ms(r.w1P99) }},
		{fmt.Sprintf("W3 %d writers, own streams: median / p99 ms", scaleW3Writers), func(r scaleRow) string { return ms(r.w3Median) + " / " + ms(r.w3P99) }},
		{"R1 read a 1,000-event stream, events/s", func(r scaleRow) string { return formatValue(r.r1) }},
		{"rare type (0.1%) read across the store: ms (events/s)", func(r scaleRow) string {
			return ms(r.rareTime) + " (" + formatValue(r.rare) + ")"
		}},
		{"the same with the type index (Options.TypeIndex): ms (events/s)", func(r scaleRow) string {
			return ms(r.rareIndexedTime) + " (" + formatValue(r.rareIndexed) + ")"
		}},
		{"building the type index: ms", func(r scaleRow) string { return ms(r.indexBuild) }},
		{fmt.Sprintf("projector catch-up over the newest %d events, events/s", scaleCatchUp), func(r scaleRow) string { return formatValue(r.catchUp) }},
		{"aggregate load, 1,000 events, loads/s", func(r scaleRow) string { return formatValue(r.loadPlain) }},
		{"aggregate load from a snapshot, loads/s", func(r scaleRow) string { return formatValue(r.loadSnapshot) }},
		{"bytes on disk per event", func(r scaleRow) string { return formatValue(r.bytesPerEvent) }},
	}
	for _, res := range results {
		b.WriteString("\n| " + res.target + " |")
		sep := "|---|"
		for _, r := range res.rows {
			b.WriteString(" " + formatCount(r.events) + " events |")
			sep += "--:|"
		}
		b.WriteString("\n" + sep + "\n")
		for _, l := range lines {
			b.WriteString("| " + l.label + " |")
			for _, r := range res.rows {
				b.WriteString(" " + l.cell(r) + " |")
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatCount formats an event count: 1M, 10M, or the number itself.
func formatCount(n int) string {
	if n >= 1_000_000 && n%1_000_000 < 10_000 {
		return strconv.Itoa(n/1_000_000) + "M"
	}
	return formatValue(float64(n))
}

// parseScale parses the -scale flag: comma-separated event counts, in
// increasing order, such as "1000000,10000000" (1M and 10M work too).
func parseScale(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-scale: %q is not a positive event count", f)
		}
		n *= mult
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-scale: sizes must increase (%d after %d)", n, out[len(out)-1])
		}
		if n <= 3*scaleStreamEvents {
			return nil, fmt.Errorf("-scale: %d events is too few; the streams every size reads take %d", n, 3*scaleStreamEvents)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-scale: no sizes")
	}
	return out, nil
}
