package main

// The multi-process workloads (-processes, PostgreSQL only): single-event
// appends to streams of each caller's own, by callers spread over child
// processes of cairnbench, under each of the store's orderings (lock and
// xid), beside the minimal floor's 8 writers; and the latency of a
// subscription while 8 writer processes append. Each measurement runs for
// a fixed time on a fresh schema; the rounds interleave every
// configuration, so that a busy machine slows them all alike, and the
// report gives the medians over the rounds with their spread.

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// envProcessChild names the environment variable that makes cairnbench a
// child process of a multi-process workload; it holds a processJob as
// JSON.
const envProcessChild = "CAIRNBENCH_PROCESS_CHILD"

// processJob is the work of one child process.
type processJob struct {
	DSN      string
	Floor    bool   // append to the minimal floor's table instead of Cairn's store
	Ordering string // "lock" or "xid": the store's ordering
	Proc     int    // this process's number, for stream names
	Callers  int    // concurrent appenders
	Duration time.Duration
	// AckEvery, if positive, makes the child report the position of every
	// AckEvery-th append and when it returned (for the latency workload).
	AckEvery int
}

// shape is one configuration of the multi-process workloads.
type shape struct {
	id      string // what -shapes selects: "1x8", "floor", "lat"
	procs   int
	callers int
	floor   bool // the minimal floor's writers rather than Cairn's
	latency bool // a subscription's latency rather than the append rate
}

// shapes lists the configurations in report order.
func allShapes() []shape {
	return []shape{
		{id: "1x8", procs: 1, callers: 8},
		{id: "2x4", procs: 2, callers: 4},
		{id: "4x2", procs: 4, callers: 2},
		{id: "8x1", procs: 8, callers: 1},
		{id: "1x1", procs: 1, callers: 1},
		{id: "floor", procs: 8, callers: 1, floor: true},
		{id: "lat", procs: 8, callers: 1, latency: true},
	}
}

func shapeIDs() []string {
	var ids []string
	for _, s := range allShapes() {
		ids = append(ids, s.id)
	}
	return ids
}

// selectShapes returns the shapes named in the comma-separated list, all
// when it is empty.
func selectShapes(list string) ([]shape, error) {
	all := allShapes()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, id := range strings.Split(list, ",") {
		id = strings.ToLower(strings.TrimSpace(id))
		if !slices.Contains(shapeIDs(), id) {
			return nil, fmt.Errorf("-shapes: unknown %q (have %s)", id, strings.Join(shapeIDs(), ","))
		}
		want[id] = true
	}
	return slices.DeleteFunc(all, func(s shape) bool { return !want[s.id] }), nil
}

// processDuration is how long each measurement of the multi-process
// workloads runs.
func processDuration(sizeName string) time.Duration {
	switch sizeName {
	case "tiny":
		return 300 * time.Millisecond
	case "quick":
		return 2 * time.Second
	}
	return 8 * time.Second
}

// procRun is one measurement: a shape under an ordering ("" for the
// floor).
type procRun struct {
	shape    shape
	ordering string
}

func (r procRun) key() string { return r.shape.id + "/" + r.ordering }

// runProcesses runs the multi-process workloads and writes their table.
func runProcesses(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	if cfg.postgresDSN == "" {
		return fmt.Errorf("-processes needs a PostgreSQL DSN: set -postgres or $%s", envPostgres)
	}
	admin, err := sql.Open("pgx", cfg.postgresDSN)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer admin.Close()
	about, err := describePostgres(ctx, admin, cfg.postgresDSN, cfg.pgIdle)
	if err != nil {
		return err
	}
	t := postgresTarget(admin, cfg.postgresDSN, cfg.pgIdle)
	dur := processDuration(cfg.sizeName)
	var runs []procRun
	for _, s := range cfg.shapes {
		if s.floor {
			runs = append(runs, procRun{shape: s})
			continue
		}
		for _, o := range cfg.orderings {
			runs = append(runs, procRun{shape: s, ordering: o})
		}
	}
	samples := map[string][]sample{}
	for round := 1; round <= cfg.runs; round++ {
		order := slices.Clone(runs)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, r := range order {
			smp, err := measureProcesses(ctx, t, r, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", r.key(), err)
			}
			samples[r.key()] = append(samples[r.key()], smp)
			unit := "events/s"
			if r.shape.latency {
				unit = "ms median"
			}
			fmt.Fprintf(stderr, "processes round %d/%d: %s %s %s\n", round, cfg.runs, r.key(), formatValue(smp.value), unit)
		}
	}
	return writeProcessReport(stdout, cfg, about, dur, samples)
}

// measureProcesses runs r once on a fresh schema.
func measureProcesses(ctx context.Context, t target, r procRun, dur time.Duration) (smp sample, err error) {
	db, err := t.open(ctx)
	if err != nil {
		return sample{}, err
	}
	defer func() { err = errors.Join(err, db.drop()) }()
	var store *eventstore.Store
	if r.shape.floor {
		if _, err := newMinimalFloor(ctx, db); err != nil {
			return sample{}, err
		}
	} else {
		store, err = benchStore(db.gorm, r.ordering)
		if err != nil {
			return sample{}, err
		}
		if err := store.Migrate(ctx); err != nil {
			return sample{}, err
		}
	}
	job := processJob{DSN: db.dsn, Floor: r.shape.floor, Ordering: r.ordering, Callers: r.shape.callers, Duration: dur}
	var sub *subscriber
	if r.shape.latency {
		job.AckEvery = 10
		sub = subscribe(ctx, store)
		defer sub.stop()
	}
	children, err := startProcesses(ctx, job, r.shape.procs)
	if err != nil {
		return sample{}, err
	}
	res, err := children.run()
	if err != nil {
		return sample{}, err
	}
	if !r.shape.latency {
		return sample{value: res.rate, extras: map[string]float64{extraClientCPU: float64(res.cpu.Microseconds()) / float64(res.events)}}, nil
	}
	return sub.latency(ctx, res.acks)
}

// benchStore returns a store over db with the benchmark's registry and
// the given ordering, not migrated.
func benchStore(db *gorm.DB, ordering string) (*eventstore.Store, error) {
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := event.Register[payload](reg, payloadType); err != nil {
		return nil, err
	}
	opts := eventstore.Options{TablePrefix: "cairn_"}
	switch ordering {
	case "lock":
	case "xid":
		opts.Ordering = eventstore.OrderingXID
	default:
		return nil, fmt.Errorf("ordering %q, want lock or xid", ordering)
	}
	return eventstore.New(db, reg, opts)
}

// processes are the child processes of one measurement.
type processes struct {
	cmds  []*exec.Cmd
	ins   []io.WriteCloser
	outs  []*bufio.Reader
	waits []func() error
}

// processResult is what the children of one measurement did.
type processResult struct {
	rate   float64       // appends per second, summed over the children
	events int64         // appends, summed
	cpu    time.Duration // CPU time of the children, summed
	acks   []ackedTime   // the sampled appends, when AckEvery was set
}

// ackedTime is when an append that stored an event at pos was called
// and when it returned.
type ackedTime struct {
	pos        int64
	called, at time.Time
}

// startProcesses starts n children with job and waits until each is
// ready (connected, its store built).
func startProcesses(ctx context.Context, job processJob, n int) (*processes, error) {
	return startChildren(ctx, n, func(i int) (string, error) {
		job.Proc = i
		b, err := json.Marshal(job)
		return envProcessChild + "=" + string(b), err
	})
}

// startChildren starts n children of cairnbench, child i with the
// environment variable env(i) ("NAME=value") added, and waits until each
// says it is ready.
func startChildren(ctx context.Context, n int, env func(i int) (string, error)) (*processes, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ps := &processes{}
	for i := range n {
		v, err := env(i)
		if err != nil {
			ps.kill()
			return nil, err
		}
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), v)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			ps.kill()
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			ps.kill()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			ps.kill()
			return nil, err
		}
		ps.cmds, ps.ins, ps.outs = append(ps.cmds, cmd), append(ps.ins, in), append(ps.outs, bufio.NewReader(out))
		ps.waits = append(ps.waits, cmd.Wait)
	}
	for i, out := range ps.outs {
		line, err := out.ReadString('\n')
		if err != nil || line != "ready\n" {
			ps.kill()
			return nil, fmt.Errorf("child process %d: %q, %v; want ready", i, line, err)
		}
	}
	return ps, nil
}

func (ps *processes) kill() {
	for i, c := range ps.cmds {
		c.Process.Kill()
		ps.waits[i]()
	}
}

// run releases the children at once and collects what they report.
func (ps *processes) run() (processResult, error) {
	for i, in := range ps.ins {
		if _, err := io.WriteString(in, "go\n"); err != nil {
			ps.kill()
			return processResult{}, fmt.Errorf("child process %d: %w", i, err)
		}
	}
	var (
		res  processResult
		mu   sync.Mutex
		errs = make([]error, len(ps.cmds))
		wg   sync.WaitGroup
	)
	for i, out := range ps.outs {
		wg.Go(func() {
			var rate float64
			var acks []ackedTime
			err := func() error {
				for {
					line, err := out.ReadString('\n')
					if errors.Is(err, io.EOF) {
						return nil
					}
					if err != nil {
						return err
					}
					f := strings.Fields(line)
					switch {
					case len(f) == 4 && f[0] == "done":
						n, err1 := strconv.ParseInt(f[1], 10, 64)
						ns, err2 := strconv.ParseInt(f[2], 10, 64)
						cpu, err3 := strconv.ParseInt(f[3], 10, 64)
						if err := errors.Join(err1, err2, err3); err != nil || ns <= 0 {
							return fmt.Errorf("child printed %q", line)
						}
						rate = float64(n) / time.Duration(ns).Seconds()
						mu.Lock()
						res.events += n
						res.cpu += time.Duration(cpu)
						mu.Unlock()
					case len(f) == 4 && f[0] == "ack":
						pos, err1 := strconv.ParseInt(f[1], 10, 64)
						called, err2 := strconv.ParseInt(f[2], 10, 64)
						ns, err3 := strconv.ParseInt(f[3], 10, 64)
						if err := errors.Join(err1, err2, err3); err != nil {
							return fmt.Errorf("child printed %q", line)
						}
						acks = append(acks, ackedTime{pos, time.Unix(0, called), time.Unix(0, ns)})
					default:
						return fmt.Errorf("child printed %q", line)
					}
				}
			}()
			errs[i] = errors.Join(err, ps.waits[i]())
			if errs[i] == nil && rate == 0 {
				errs[i] = errors.New("child reported no rate")
			}
			mu.Lock()
			res.rate += rate
			res.acks = append(res.acks, acks...)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return processResult{}, fmt.Errorf("child process %d: %w", i, err)
		}
	}
	return res, nil
}

// extraClientCPU is the CPU time the writer processes spent per append,
// in microseconds.
const extraClientCPU = "client_cpu"

// extraFromCall is the latency workload's median from an append's call
// (rather than its return) to the subscriber receiving the event.
const extraFromCall = "from_call"

// subscriber follows a store and notes when each event arrived.
type subscriber struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   map[int64]time.Time
	last   int64
	err    error
}

func subscribe(ctx context.Context, s *eventstore.Store) *subscriber {
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscriber{cancel: cancel, done: make(chan struct{}), seen: map[int64]time.Time{}}
	go func() {
		defer close(sub.done)
		for e, err := range s.Subscribe(ctx, 0) {
			now := time.Now()
			sub.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					sub.err = err
				}
				sub.mu.Unlock()
				return
			}
			sub.seen[e.Position], sub.last = now, e.Position
			sub.mu.Unlock()
		}
	}()
	return sub
}

func (sub *subscriber) stop() {
	sub.cancel()
	<-sub.done
}

// latency waits until the subscriber has seen the last acknowledged
// append, and returns the median and 99th percentile of the times from an
// append returning to the subscriber receiving its event (zero when it
// received the event first), and the median from the append's call.
func (sub *subscriber) latency(ctx context.Context, acks []ackedTime) (sample, error) {
	if len(acks) == 0 {
		return sample{}, errors.New("no acknowledged appends sampled")
	}
	end := slices.MaxFunc(acks, func(a, b ackedTime) int { return cmp.Compare(a.pos, b.pos) }).pos
	deadline := time.Now().Add(30 * time.Second)
	for {
		sub.mu.Lock()
		last, err := sub.last, sub.err
		sub.mu.Unlock()
		if err != nil {
			return sample{}, err
		}
		if last >= end {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return sample{}, fmt.Errorf("subscription at %d, 30s after the last append at %d", last, end)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	lat := make([]float64, 0, len(acks))
	fromCall := make([]float64, 0, len(acks))
	for _, a := range acks {
		at, ok := sub.seen[a.pos]
		if !ok {
			return sample{}, fmt.Errorf("the subscription skipped position %d", a.pos)
		}
		lat = append(lat, max(0, float64(at.Sub(a.at))/float64(time.Millisecond)))
		fromCall = append(fromCall, float64(at.Sub(a.called))/float64(time.Millisecond))
	}
	slices.Sort(lat)
	return sample{value: lat[len(lat)/2], extras: map[string]float64{
		extraP99:      lat[len(lat)*99/100],
		extraFromCall: median(fromCall),
	}}, nil
}

// runProcessChild is the whole work of a child process: build the
// appender, say "ready", wait for "go" on in, append for the job's
// duration and report.
func runProcessChild(ctx context.Context, spec string, in io.Reader, out io.Writer) error {
	var job processJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		return fmt.Errorf("%s: %w", envProcessChild, err)
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
	var appendOne func(ctx context.Context, stream string, expected int64, p payload) (int64, error)
	if job.Floor {
		f := attachMinimalFloor(sqlDB)
		appendOne = func(ctx context.Context, stream string, expected int64, p payload) (int64, error) {
			return 0, f.append(ctx, stream, expected, []payload{p})
		}
	} else {
		s, err := benchStore(g, job.Ordering)
		if err != nil {
			return err
		}
		meta := benchMetadata()
		appendOne = func(ctx context.Context, stream string, expected int64, p payload) (int64, error) {
			got, err := s.Append(ctx, stream, event.Exact(expected), []any{p}, event.WithMetadata(meta))
			if err != nil {
				return 0, err
			}
			return got[0].Position, nil
		}
	}
	evs := make([][]payload, job.Callers)
	for c := range evs {
		evs[c] = payloads((job.Proc*job.Callers+c)<<20, 1024)
	}
	if _, err := io.WriteString(out, "ready\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil || line != "go\n" {
		return fmt.Errorf("waiting for go: %q, %v", line, err)
	}
	const streams = 16
	var total atomic.Int64
	acks := make([][]ackedTime, job.Callers)
	start := time.Now()
	deadline := start.Add(job.Duration)
	grp, gctx := errgroup.WithContext(ctx)
	for c := range job.Callers {
		grp.Go(func() error {
			versions := make([]int64, streams)
			names := make([]string, streams)
			for k := range names {
				names[k] = fmt.Sprintf("p%d-c%d-%02d", job.Proc, c, k)
			}
			for i := 0; ; i++ {
				called := time.Now()
				if !called.Before(deadline) {
					return nil
				}
				k := i % streams
				pos, err := appendOne(gctx, names[k], versions[k], evs[c][i%len(evs[c])])
				if err != nil {
					return err
				}
				if job.AckEvery > 0 && i%job.AckEvery == 0 {
					acks[c] = append(acks[c], ackedTime{pos, called, time.Now()})
				}
				versions[k]++
				total.Add(1)
			}
		})
	}
	if err := grp.Wait(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "done %d %d %d\n", total.Load(), elapsed.Nanoseconds(), cpuTime().Nanoseconds())
	for _, as := range acks {
		for _, a := range as {
			fmt.Fprintf(w, "ack %d %d %d\n", a.pos, a.called.UnixNano(), a.at.UnixNano())
		}
	}
	return w.Flush()
}

// attachMinimalFloor returns the minimal floor on a PostgreSQL database
// whose table newMinimalFloor has created.
func attachMinimalFloor(db *sql.DB) *minimalFloor {
	f := &minimalFloor{
		db:          db,
		placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
		isConflict: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "23505"
		},
	}
	f.insertOne = f.insertSQL(1)
	return f
}

// writeProcessReport writes the multi-process table.
func writeProcessReport(w io.Writer, cfg config, about string, dur time.Duration, samples map[string][]sample) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cairnbench -processes: %d CPUs, %s/%s, %s; %v per measurement, median of %d interleaved round(s), each on a fresh schema; "+
		"single-event appends (two-key metadata) to 16 streams of each caller's own, exact expected versions; floor = the minimal event store's "+
		"(DESIGN.md) 8 writers in 8 processes, one INSERT per transaction; %s\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), dur, cfg.runs, about)
	floor := summarize(samples["floor/"])
	b.WriteString("| processes × callers | lock ordering | xid ordering | xid / lock | xid / floor | notes |\n")
	b.WriteString("|---|--:|--:|--:|--:|---|\n")
	for _, s := range cfg.shapes {
		if s.floor {
			fmt.Fprintf(&b, "| floor: %d × %d, minimal schema | — | — | — | — | %s events/s; writers' CPU per append %.0f µs; spread ±%.0f%% |\n",
				s.procs, s.callers, formatValue(floor.median), floor.extras[extraClientCPU], 100*floor.spread)
			continue
		}
		lock, xid := summarize(samples[s.id+"/lock"]), summarize(samples[s.id+"/xid"])
		if s.latency {
			fmt.Fprintf(&b, "| subscription latency, %d writer processes: Append returned → subscriber has it (ms, median) | %s | %s | %.2f | — | "+
				"p99: lock %s, xid %s ms; from Append called: lock %s, xid %s ms; spread: lock ±%.0f%%, xid ±%.0f%% |\n",
				s.procs, formatMs(lock.median), formatMs(xid.median), ratio(xid, lock),
				formatMs(lock.extras[extraP99]), formatMs(xid.extras[extraP99]),
				formatMs(lock.extras[extraFromCall]), formatMs(xid.extras[extraFromCall]), 100*lock.spread, 100*xid.spread)
			continue
		}
		vsFloor := "—"
		if floor.runs > 0 {
			vsFloor = strconv.FormatFloat(ratio(xid, floor), 'f', 2, 64)
		}
		fmt.Fprintf(&b, "| %d × %d (events/s) | %s | %s | %.2f | %s | writers' CPU per append: lock %.0f µs, xid %.0f µs; spread: lock ±%.0f%%, xid ±%.0f%% |\n",
			s.procs, s.callers, formatValue(lock.median), formatValue(xid.median), ratio(xid, lock), vsFloor,
			lock.extras[extraClientCPU], xid.extras[extraClientCPU], 100*lock.spread, 100*xid.spread)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selectOrderings returns the orderings of the comma-separated list.
func selectOrderings(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o != "lock" && o != "xid" {
			return nil, fmt.Errorf("-orderings: %q, want lock or xid", o)
		}
		out = append(out, o)
	}
	return out, nil
}
