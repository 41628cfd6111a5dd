// Command cairnbench measures Cairn's event store against the "floor": the
// plainest fast way to do the same work with database/sql on the same
// database at the same durability setting. For the event store's workloads
// the headline floor is the minimal event store of DESIGN.md's
// "Performance targets" (floor_minimal.go: an autoincrement id, stream,
// version, type, data, metadata, created_at and one unique constraint; a
// plain INSERT per append, a multi-row INSERT per batch, ordered SELECTs
// decoded with encoding/json), and a second floor runs the same plain code
// on a table of Cairn's own shape (floor.go), to show what Cairn's columns
// and indexes cost. Every append of every side records the same two-key
// metadata. See BENCHMARKS.md for the workloads and the latest figures.
//
// The event store's workloads (W1–W4 appends, R1–R2 reads) run the same
// driver on Cairn's store and on both floors. A1 loads an aggregate through
// the repository's On<Event> dispatch against Cairn's ReadStream folded by
// a hand-written type switch (A1S: from a snapshot; A1H: with the handlers
// listed for direct calls); P1 is a projector's
// catch-up against a plain database/sql read-insert-commit loop; L1 is a
// live projector's latency and L2 read-your-writes latency (an append, a
// wait for its position, the query), which have no floor; S1 a reactor
// with a 20 ms side effect at Concurrency 1, 8, 32 and 128 (scaleout.go),
// which has none either. -scale and
// -processes are modes of their own (scale.go, processes.go).
//
// Every workload runs Cairn and the floor alternately, each on a fresh
// database (a new SQLite file, or a new PostgreSQL schema), several times,
// and prints the medians and the Cairn/floor ratio as one markdown table.
//
// Usage:
//
//	go run ./cmd/cairnbench [flags]
//
//	-db sqlite|postgres|both   databases to run on (default: both when a DSN is set)
//	-postgres DSN              PostgreSQL database (default: $CAIRN_POSTGRES_DSN)
//	-sqlite DIR                directory for the SQLite files (default: a temp dir)
//	-sync full|normal|both     SQLite synchronous setting (default both)
//	-quick                     sizes about 10× smaller, 1 run
//	-pgidle N                  max idle connections of the PostgreSQL pools (default: eventstore.OpenPostgres's)
//	-runs N                    runs per workload and side (default 5; -quick: 1)
//	-only W1,R2                run only these workloads (W1–W4, R1, R2, A1, A1S, A1H, P1, L1, L2, S1)
//	-processes                 run the multi-process workloads instead (PostgreSQL; see processes.go)
//	-partitions                run the partitions workload instead (PostgreSQL; see partitions.go)
//	-shapes 8x1,floor          with -processes: run only these shapes (1x8, 2x4, 4x2, 8x1, 1x1, floor, lat)
//	-scale 1M,10M              scale mode: fill one store per database to each size and
//	                           measure appends (median, p99), a stream read, a rare type's
//	                           read, a projector's catch-up, aggregate loads and bytes on
//	                           disk per event at each (see scale.go)
//	-cpuprofile FILE           write a CPU profile
//	-memprofile FILE           write a heap (allocation) profile at the end
//
// Progress goes to stderr, the table to stdout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// envPostgres names the environment variable with the default PostgreSQL DSN.
const envPostgres = "CAIRN_POSTGRES_DSN"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if spec := os.Getenv(envProcessChild); spec != "" {
		err = runProcessChild(ctx, spec, os.Stdin, os.Stdout) // a child of -processes
	} else if spec := os.Getenv(envPartitionChild); spec != "" {
		err = runPartitionChild(ctx, spec, os.Stdin, os.Stdout) // a child of -partitions
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "cairnbench: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "cairnbench:", err)
		os.Exit(1)
	}
}

// config is what the flags select.
type config struct {
	sqliteDir   string // empty: a temporary directory
	postgresDSN string
	pgIdle      int // SetMaxIdleConns of PostgreSQL pools; 0: database/sql's default
	sqlite      bool
	postgres    bool
	syncs       []sqlitedb.Synchronous
	runs        int
	sizeName    string // "full", "quick" or "tiny"
	sizes       sizes
	workloads   []workload
	cpuProfile  string
	memProfile  string
	processes   bool    // run the multi-process workloads (processes.go) instead
	partitions  bool    // run the partitions workload (partitions.go) instead
	shapes      []shape // of the multi-process workloads
	orderings   []string
	// scale, when set, selects the scale mode (scale.go) at these store
	// sizes instead of the workloads.
	scale []int
}

// run parses args, runs the benchmarks and writes the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return err
	}
	if cfg.processes {
		err := runProcesses(ctx, cfg, stdout, stderr)
		stopProfile()
		return err
	}
	if cfg.partitions {
		err := runPartitions(ctx, cfg, stdout, stderr)
		stopProfile()
		return err
	}
	if cfg.scale != nil {
		results, about, err := executeScale(ctx, cfg, stderr)
		stopProfile()
		if err != nil {
			return err
		}
		return writeScaleReport(stdout, about, results)
	}
	results, err := execute(ctx, cfg, stderr)
	stopProfile()
	if err != nil {
		return err
	}
	if err := writeMemProfile(cfg.memProfile); err != nil {
		return err
	}
	return writeReport(stdout, cfg, results)
}

// hiddenFlag is left out of the usage text: it exists for smoke tests.
const hiddenFlag = "tiny"

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("cairnbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       config
		db        = fs.String("db", "", "databases: sqlite, postgres or both (default: both when a PostgreSQL DSN is set)")
		sync      = fs.String("sync", "both", "SQLite synchronous setting: full, normal or both")
		quick     = fs.Bool("quick", false, "sizes about 10× smaller, 1 run unless -runs is given")
		tiny      = fs.Bool("tiny", false, "minimal sizes, for smoke tests")
		scale     = fs.String("scale", "", "scale mode: fill one store per database to each of these sizes (e.g. 1M,10M) and measure at each")
		only      = fs.String("only", "", "comma-separated workloads to run (default all: "+strings.Join(workloadIDs(allWorkloads()), ",")+")")
		orderings = fs.String("orderings", "lock,xid", "with -processes: the store's orderings to run")
		procs     = fs.String("shapes", "", "with -processes: comma-separated shapes to run (default all: "+strings.Join(shapeIDs(), ",")+")")
	)
	fs.StringVar(&cfg.sqliteDir, "sqlite", "", "directory for the SQLite database files (default: a temporary directory)")
	fs.StringVar(&cfg.postgresDSN, "postgres", os.Getenv(envPostgres), "PostgreSQL DSN (default: $"+envPostgres+"; empty skips PostgreSQL)")
	fs.IntVar(&cfg.pgIdle, "pgidle", 0, "max idle connections of each PostgreSQL pool, for Cairn and the floor alike (default: eventstore.OpenPostgres's)")
	fs.IntVar(&cfg.runs, "runs", 5, "runs per workload, database and side (default 5; with -quick 1)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&cfg.memProfile, "memprofile", "", "write a heap profile to this file at the end")
	fs.BoolVar(&cfg.processes, "processes", false, "run the multi-process workloads instead (PostgreSQL): appends from child processes under lock and xid ordering, the floor's 8 writers, subscription latency")
	fs.BoolVar(&cfg.partitions, "partitions", false, "run the partitions workload instead (PostgreSQL): a reactor with a 20 ms side effect in 4 partitions over 1, 2 and 4 runner processes")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	runsSet := false
	fs.Visit(func(f *flag.Flag) { runsSet = runsSet || f.Name == "runs" })

	var errs []error
	cfg.sizeName, cfg.sizes = "full", fullSizes()
	switch {
	case *tiny:
		cfg.sizeName, cfg.sizes = "tiny", tinySizes()
	case *quick:
		cfg.sizeName, cfg.sizes = "quick", quickSizes()
	}
	if !runsSet && cfg.sizeName != "full" {
		cfg.runs = 1
	}
	if cfg.pgIdle < 0 {
		errs = append(errs, fmt.Errorf("-pgidle %d: want 0 or more", cfg.pgIdle))
	}
	if cfg.runs < 1 {
		errs = append(errs, fmt.Errorf("-runs %d: want 1 or more", cfg.runs))
	}
	if err := cfg.setDatabases(*db); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.setSyncs(*sync); err != nil {
		errs = append(errs, err)
	}
	if *scale != "" {
		sizes, err := parseScale(*scale)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.scale = sizes
	}
	ws, err := selectWorkloads(*only)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.workloads = ws
	if cfg.shapes, err = selectShapes(*procs); err != nil {
		errs = append(errs, err)
	}
	if cfg.orderings, err = selectOrderings(*orderings); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

func usage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprintln(out, "usage: cairnbench [flags]")
	fmt.Fprintln(out, "Compares Cairn's event store with plain database/sql on the same database.")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == hiddenFlag {
			return
		}
		fmt.Fprintf(out, "  -%s\n    \t%s\n", f.Name, f.Usage)
	})
}

func (c *config) setDatabases(db string) error {
	switch db {
	case "":
		c.sqlite, c.postgres = true, c.postgresDSN != ""
	case "sqlite":
		c.sqlite = true
	case "postgres":
		c.postgres = true
	case "both":
		c.sqlite, c.postgres = true, true
	default:
		return fmt.Errorf("-db %q: want sqlite, postgres or both", db)
	}
	if c.postgres && c.postgresDSN == "" {
		return fmt.Errorf("-db %s needs a PostgreSQL DSN: set -postgres or $%s", db, envPostgres)
	}
	return nil
}

func (c *config) setSyncs(s string) error {
	switch strings.ToLower(s) {
	case "full":
		c.syncs = []sqlitedb.Synchronous{sqlitedb.Full}
	case "normal":
		c.syncs = []sqlitedb.Synchronous{sqlitedb.Normal}
	case "both":
		c.syncs = []sqlitedb.Synchronous{sqlitedb.Full, sqlitedb.Normal}
	default:
		return fmt.Errorf("-sync %q: want full, normal or both", s)
	}
	return nil
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func writeMemProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("mem profile: %w", err)
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("mem profile: %w", err)
	}
	return f.Close()
}
