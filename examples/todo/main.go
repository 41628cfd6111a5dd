// Command todo is the todo application built on Cairn: a CQRS web app with
// one aggregate (Todo), four commands, three projections and one reactor,
// with the HTTP API of EventSourcery's example todo app.
//
// Usage:
//
//	go run ./examples/todo [mode] [flags]
//
// The modes:
//
//	(none)      everything in one process: migrate, the web server and the
//	            processors (on the SQLite file todo.db unless -db says otherwise)
//	web         only the HTTP API (commands and queries)
//	processors  only the projectors and the notifier
//	migrate     create or update the schema, then exit
//	admin       Cairn's admin command on the app's database (todo admin -h)
//
// The flags, each with an environment variable:
//
//	-db, TODO_DB                  SQLite file path (default todo.db) or postgres:// URL
//	-addr, TODO_ADDR              where the web server listens (default 127.0.0.1:3000)
//	-status-addr, TODO_STATUS_ADDR  in processors mode, where the processors'
//	                              status JSON is served (default off); in
//	                              all-in-one mode it is at /processors
//	-wait-timeout, TODO_WAIT_TIMEOUT  the longest a query sent with Cairn-After
//	                              waits for its projections (default 2s)
//	-trace, TODO_TRACE            where to send OpenTelemetry traces: stdout,
//	                              otlp (an OTLP/HTTP collector, set up by the
//	                              OTEL_EXPORTER_OTLP_* variables), or nowhere
//	                              (the default, unless OTEL_EXPORTER_OTLP_ENDPOINT
//	                              or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set:
//	                              then otlp)
//
// The web server and the processors' status address also serve /metrics:
// the framework's metrics (appends, reads, each processor's lag in events
// and seconds, failures, …) in the Prometheus text format, for Prometheus
// to scrape; grafana-dashboard.json in this directory charts them.
//
// The program logs with log/slog to standard error, prints the URLs it serves
// to standard output once it listens, and exits cleanly on SIGINT and
// SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairnhq/cairn/examples/todo/internal/web"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "admin" {
		code := adminMain(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr, logger)
		stop()
		os.Exit(code)
	}
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, logger)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("todo: exiting", "error", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	mode       string
	db         string
	addr       string
	statusAddr string
	// waitTimeout bounds a query's wait for Cairn-After (read-your-writes).
	waitTimeout time.Duration
	// trace is where traces go: "", "stdout" or "otlp" (telemetry.go).
	trace string
}

const usage = `Usage: todo [mode] [flags]

Modes:
  (none)      migrate, then run the web server and the processors in one process
  web         run only the HTTP API
  processors  run only the projectors and the notifier
  migrate     create or update the schema, then exit
  admin       Cairn's admin command on the app's database: todo admin -h

Flags:
`

// parseArgs reads the mode and the flags, whose defaults come from the
// environment.
func parseArgs(args []string, getenv func(string) string, output io.Writer) (options, error) {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var o options
	fs := flag.NewFlagSet("todo", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(output, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.db, "db", env("TODO_DB", "todo.db"), "SQLite file path or postgres:// URL (env TODO_DB)")
	fs.StringVar(&o.addr, "addr", env("TODO_ADDR", "127.0.0.1:3000"), "address of the web server (env TODO_ADDR)")
	fs.StringVar(&o.statusAddr, "status-addr", env("TODO_STATUS_ADDR", ""), "address of the processors' status JSON in processors mode, off when empty (env TODO_STATUS_ADDR)")
	defTrace := env("TODO_TRACE", "")
	if defTrace == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		defTrace = traceOTLP
	}
	fs.StringVar(&o.trace, "trace", defTrace, "where to send traces: stdout, otlp, or nowhere when empty; otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set (env TODO_TRACE)")
	waitTimeout := fs.String("wait-timeout", env("TODO_WAIT_TIMEOUT", web.DefaultWaitTimeout.String()), "the longest a query sent with Cairn-After waits for its projections (env TODO_WAIT_TIMEOUT)")

	// The mode comes first, or after the flags.
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		o.mode, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.mode == "" && fs.NArg() > 0 {
		o.mode = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return o, err
		}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	d, err := time.ParseDuration(*waitTimeout)
	if err != nil || d <= 0 {
		return o, fmt.Errorf("-wait-timeout %q: want a positive duration such as 2s", *waitTimeout)
	}
	o.waitTimeout = d
	switch o.mode {
	case "", "web", "processors", "migrate":
	default:
		fs.Usage()
		return o, fmt.Errorf("unknown mode %q", o.mode)
	}
	switch o.trace {
	case traceOff, traceStdout, traceOTLP:
	default:
		return o, fmt.Errorf("-trace %q: want stdout, otlp or nothing", o.trace)
	}
	return o, nil
}

// run runs the program until ctx ends or it fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, logger *slog.Logger) error {
	o, err := parseArgs(args, getenv, stdout)
	if err != nil {
		return err
	}
	tp, shutdownTracing, err := setupTracing(ctx, o.trace, o.mode, stdout)
	if err != nil {
		return err
	}
	defer func() {
		// Flush the spans still buffered, even though ctx has ended.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			logger.WarnContext(ctx, "flushing traces", "error", err)
		}
	}()
	db, err := openDB(o.db)
	if err != nil {
		return err
	}
	m, err := setupMetrics()
	if err != nil {
		return err
	}
	defer m.shutdown(context.WithoutCancel(ctx))
	a, err := newApp(db, config{logger: logger, waitTimeout: o.waitTimeout, metrics: m, tracerProvider: tp})
	if err != nil {
		return err
	}
	defer a.close()
	ready := func(what string) func(string) {
		return func(url string) {
			fmt.Fprintf(stdout, "todo: %s at %s\n", what, url)
			logger.InfoContext(ctx, "listening", "what", what, "url", url)
		}
	}

	switch o.mode {
	case "migrate":
		if err := a.migrate(ctx); err != nil {
			return err
		}
		logger.InfoContext(ctx, "schema is up to date")
		return nil

	case "web":
		return serve(ctx, o.addr, a.handler(nil), ready("serving the API"))

	case "processors":
		r, err := a.newRunner()
		if err != nil {
			return err
		}
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return r.Run(ctx) })
		if o.statusAddr != "" {
			g.Go(func() error {
				return serve(ctx, o.statusAddr, a.statusHandler(r), ready("serving the processors' status"))
			})
		}
		logger.InfoContext(ctx, "running the processors", "owner", r.Owner())
		return g.Wait()

	default: // all in one
		if err := a.migrate(ctx); err != nil {
			return err
		}
		r, err := a.newRunner()
		if err != nil {
			return err
		}
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return r.Run(ctx) })
		g.Go(func() error { return serve(ctx, o.addr, a.handler(r.Handler()), ready("serving")) })
		return g.Wait()
	}
}
