package main

// The partitions workload (-partitions, PostgreSQL only): a reactor whose
// side effect takes a fixed time (20 ms: an email, an HTTP call) works
// through 10,000 events in 1,000 streams, split into partitions
// (processing.Options.Partitions) shared by runner processes — child
// processes of cairnbench, as in -processes. Each measurement fills a
// fresh schema, starts the processes (each joins before any runs),
// releases them at once and times until every partition has passed the
// head. A second set runs a handler without a side effect, to show what
// the partitions' reading costs: each partition reads every event of the
// processor's types and moves past the other partitions' (read
// amplification K).

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
	"github.com/cairnhq/cairn/runner"
)

// envPartitionChild names the environment variable that makes cairnbench a
// runner process of the partitions workload; it holds a partitionJob as
// JSON.
const envPartitionChild = "CAIRNBENCH_PARTITION_CHILD"

// partitionConns bounds the connections of each runner process.
const partitionConns = 8

// partitionJob is the work of one runner process.
type partitionJob struct {
	DSN        string
	Proc       int
	Partitions int
	Effect     time.Duration // the side effect's time per event
}

// partitionShape is one configuration of the partitions workload.
type partitionShape struct {
	partitions, procs int
	effect            time.Duration
}

func (s partitionShape) String() string {
	return fmt.Sprintf("K=%d over %d process(es), %v side effect", s.partitions, s.procs, s.effect)
}

// partitionShapes lists the configurations in report order.
func partitionShapes() []partitionShape {
	const effect = 20 * time.Millisecond
	return []partitionShape{
		{4, 1, effect}, {4, 2, effect}, {4, 4, effect},
		{16, 1, effect}, {16, 4, effect},
		{1, 1, 0}, {4, 1, 0}, {4, 4, 0},
	}
}

// partitionSizes returns the events and streams of the workload.
func partitionSizes(sizeName string) (events, streams int) {
	switch sizeName {
	case "tiny":
		return 200, 20
	case "quick":
		return 2000, 200
	}
	return 10_000, 1_000
}

// runPartitions runs the partitions workload and writes its table.
func runPartitions(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if cfg.postgresDSN == "" {
		return fmt.Errorf("-partitions needs a PostgreSQL DSN: set -postgres or $%s", envPostgres)
	}
	t, about, closeAdmin, err := partitionTarget(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAdmin()
	events, streams := partitionSizes(cfg.sizeName)
	shapes := partitionShapes()
	samples := map[partitionShape][]float64{}
	for round := 1; round <= cfg.runs; round++ {
		order := slices.Clone(shapes)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, s := range order {
			rate, err := measurePartitions(ctx, t, s, events, streams)
			if err != nil {
				return fmt.Errorf("%v: %w", s, err)
			}
			samples[s] = append(samples[s], rate)
			fmt.Fprintf(stderr, "partitions round %d/%d: %v: %s events/s (load %s)\n", round, cfg.runs, s, formatValue(rate), loadAverage())
		}
	}
	fmt.Fprintf(stdout, "# cairnbench -partitions: %d events in %d streams, a reactor in K partitions over runner processes\n\n", events, streams)
	fmt.Fprintf(stdout, "%s; %d round(s), interleaved; load average at the end: %s\n\n", about, cfg.runs, loadAverage())
	fmt.Fprintln(stdout, "| partitions | processes | side effect | events/s (median) | runs |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---|")
	for _, s := range shapes {
		v := samples[s]
		runs := make([]string, len(v))
		for i, x := range v {
			runs[i] = formatValue(x)
		}
		fmt.Fprintf(stdout, "| %d | %d | %v | %s | %s |\n", s.partitions, s.procs, s.effect, formatValue(median(v)), strings.Join(runs, ", "))
	}
	return nil
}

// partitionTarget returns the PostgreSQL target of the workload.
func partitionTarget(ctx context.Context, cfg config) (target, string, func(), error) {
	admin, err := sql.Open("pgx", cfg.postgresDSN)
	if err != nil {
		return target{}, "", nil, fmt.Errorf("postgres: %w", err)
	}
	about, err := describePostgres(ctx, admin, cfg.postgresDSN, cfg.pgIdle)
	if err != nil {
		admin.Close()
		return target{}, "", nil, err
	}
	return postgresTarget(admin, cfg.postgresDSN, cfg.pgIdle), about, func() { admin.Close() }, nil
}

// loadAverage returns the 1-minute load average, "?" where it cannot be
// read.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// partitionedReactor returns the workload's reactor over s.
func partitionedReactor(s *eventstore.Store, k int, effect time.Duration, log *slog.Logger) (*reactor.Reactor, error) {
	r, err := reactor.New(s, "mailer", reactor.Options{Processing: processing.Options{Partitions: k, BatchSize: 100, Logger: log}})
	if err != nil {
		return nil, err
	}
	err = reactor.On(r, func(ctx context.Context, _ event.Event, _ payload, _ *reactor.Emitter) error {
		if effect <= 0 {
			return nil
		}
		t := time.NewTimer(effect)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	})
	return r, err
}

// measurePartitions runs s once on a fresh schema and returns its rate in
// events per second.
func measurePartitions(ctx context.Context, t target, s partitionShape, events, streams int) (rate float64, err error) {
	db, err := t.open(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if derr := db.drop(); err == nil {
			err = derr
		}
	}()
	store, err := benchStore(db.gorm, "lock")
	if err != nil {
		return 0, err
	}
	if err := store.Migrate(ctx); err != nil {
		return 0, err
	}
	var head int64
	perStream := events / streams
	for i := range streams {
		evs := make([]any, perStream)
		for j, p := range payloads(i*perStream, perStream) {
			evs[j] = p
		}
		got, err := store.Append(ctx, fmt.Sprintf("customer-%d", i), event.NoStream, evs)
		if err != nil {
			return 0, err
		}
		head = max(head, got[len(got)-1].Position)
	}
	r, err := partitionedReactor(store, s.partitions, s.effect, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, err
	}
	if err := r.Migrate(ctx); err != nil {
		return 0, err
	}
	children, err := startPartitionChildren(ctx, partitionJob{DSN: db.dsn, Partitions: s.partitions, Effect: s.effect}, s.procs)
	if err != nil {
		return 0, err
	}
	defer children.stop()
	start := time.Now()
	if err := children.release(); err != nil {
		return 0, err
	}
	exited := children.watch()
	names := make([]string, s.partitions)
	for j := range names {
		names[j] = processing.PartitionName("mailer", j, s.partitions)
	}
	for {
		rows, err := store.ListPositions(ctx)
		if err != nil {
			return 0, err
		}
		done := 0
		for _, row := range rows {
			if slices.Contains(names, row.Name) && row.Position >= head {
				done++
			}
		}
		if done == len(names) {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case i := <-exited:
			return 0, fmt.Errorf("runner process %d exited before the partitions caught up: %w", i, children.stop())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return float64(events) / time.Since(start).Seconds(), children.stop()
}

// startPartitionChildren starts n runner processes and waits until each
// has joined the processor's members.
func startPartitionChildren(ctx context.Context, job partitionJob, n int) (*partitionChildren, error) {
	ps, err := startChildren(ctx, n, func(i int) (string, error) {
		job.Proc = i
		b, err := json.Marshal(job)
		return envPartitionChild + "=" + string(b), err
	})
	if err != nil {
		return nil, err
	}
	return &partitionChildren{ps: ps}, nil
}

// partitionChildren are the runner processes of one measurement.
type partitionChildren struct {
	ps      *processes
	stopped sync.Once
	err     error
}

// release lets every child start its runner.
func (pc *partitionChildren) release() error {
	for i, in := range pc.ps.ins {
		if _, err := io.WriteString(in, "go\n"); err != nil {
			return fmt.Errorf("runner process %d: %w", i, err)
		}
	}
	return nil
}

// watch reads the children's standard output until it ends (they write
// nothing more once running) and sends on the channel the index of each
// child whose output ended: one that exited, if stop has not been called.
func (pc *partitionChildren) watch() <-chan int {
	exited := make(chan int, len(pc.ps.outs))
	for i, out := range pc.ps.outs {
		go func() {
			_, _ = io.Copy(io.Discard, out)
			exited <- i
		}()
	}
	return exited
}

// stop closes the children's standard input, which stops their runners,
// and waits for them.
func (pc *partitionChildren) stop() error {
	pc.stopped.Do(func() {
		for _, in := range pc.ps.ins {
			in.Close()
		}
		for i, wait := range pc.ps.waits {
			if err := wait(); err != nil && pc.err == nil {
				pc.err = fmt.Errorf("runner process %d: %w", i, err)
			}
		}
	})
	return pc.err
}

// runPartitionChild is a runner process of the partitions workload: it
// joins, says ready, runs the reactor's partitions from "go" until its
// standard input closes.
func runPartitionChild(ctx context.Context, spec string, in io.Reader, out io.Writer) error {
	var job partitionJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		return fmt.Errorf("%s: %w", envPartitionChild, err)
	}
	g, err := eventstore.OpenPostgres(job.DSN)
	if err != nil {
		return err
	}
	sqlDB, err := g.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	// Every partition is a concurrent user of the pool: bound it, as a
	// deployment sharing one PostgreSQL server must.
	sqlDB.SetMaxOpenConns(partitionConns)
	s, err := benchStore(g, "lock")
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := partitionedReactor(s, job.Partitions, job.Effect, log)
	if err != nil {
		return err
	}
	owner := fmt.Sprintf("bench-%d", job.Proc)
	lease := processing.Ownership{Owner: owner, LeaseDuration: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond}
	// Join before any process runs, so that the first does not take
	// every partition only to hand them over.
	if _, err := s.JoinMembers(ctx, "mailer", owner, lease.LeaseDuration); err != nil {
		return err
	}
	rn, err := runner.New(s, runner.Options{Logger: log, Ownership: lease}, r)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(out, "ready\n"); err != nil {
		return err
	}
	br := bufio.NewReader(in)
	if line, err := br.ReadString('\n'); err != nil || line != "go\n" {
		return fmt.Errorf("waiting for go: %q, %v", line, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, br) // until the parent closes our input
		cancel()
	}()
	return rn.Run(ctx)
}
