package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/examples/todo/internal/web"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/runner"
)

// openDB opens the database named by dsn: PostgreSQL for a postgres:// URL,
// else the SQLite file at that path.
func openDB(dsn string) (*gorm.DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return eventstore.OpenPostgres(dsn)
	}
	return sqlitedb.Open(dsn, sqlitedb.Options{})
}

// snapshotEvery is how often the write side stores a snapshot of a todo:
// each time its version passes a multiple of it. A todo has a handful of
// events, so snapshots save little here; they are on to show them working,
// and a long-lived aggregate would want them.
const snapshotEvery = 5

// config holds what the app takes from outside besides its database.
type config struct {
	// logger receives every log message; nil means slog.Default().
	logger *slog.Logger
	// sender sends the notifier's notifications; nil means a
	// notify.LogSender on logger.
	sender notify.Sender
	// waitTimeout bounds a query's wait for Cairn-After; zero means
	// web.DefaultWaitTimeout.
	waitTimeout time.Duration
	// metrics, if set, is the meter provider of the store, the processors
	// and the runner, and its /metrics is served beside the API and the
	// processors' status; nil means the global meter provider (a no-op
	// unless the program sets one) and no /metrics.
	metrics *metrics

	// tracerProvider makes the spans of the store, the repository, the
	// commands, the processors and the HTTP API; nil means none (a no-op
	// provider, and no HTTP server spans).
	tracerProvider trace.TracerProvider
}

// app is the todo application wired together on one database: the event
// store, the command side (repository and dispatcher) and the processors
// (three projectors and the notifier). Each mode of the binary uses a part
// of it.
type app struct {
	db       *gorm.DB
	store    *eventstore.Store
	commands *command.Dispatcher
	logger   *slog.Logger
	cfg      config

	outstanding *projector.Projector
	scheduled   *projector.Projector
	completed   *projector.Projector
	notifier    *notify.Notifier
}

// newApp wires the app on db. It does not touch the database: migrate
// creates the tables.
func newApp(db *gorm.DB, cfg config) (*app, error) {
	a := &app{db: db, logger: cfg.logger, cfg: cfg}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	sender := cfg.sender
	if sender == nil {
		sender = notify.LogSender{Logger: a.logger.With("processor", notify.Name)}
	}

	// The event store, with the registry of the events it stores.
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := todo.RegisterEvents(reg); err != nil {
		return nil, err
	}
	var err error
	tp := cfg.tracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	a.store, err = eventstore.New(db, reg, eventstore.Options{Logger: a.logger, TracerProvider: tp, MeterProvider: cfg.metrics.meterProvider()})
	if err != nil {
		return nil, err
	}

	// The write side: commands go through a dispatcher that gives each one
	// an ID and a correlation ID, traces it, logs it, and validates it
	// before its handler runs it on the Todo aggregate.
	todos, err := todo.NewRepository(a.store, aggregate.Options{SnapshotEvery: snapshotEvery, Logger: a.logger, TracerProvider: tp})
	if err != nil {
		return nil, err
	}
	a.commands = new(command.Dispatcher)
	a.commands.Use(command.Correlation(nil), command.Tracing(tp), command.Logging(a.logger), command.Validation())
	if err := todo.HandleCommands(a.commands, todos); err != nil {
		return nil, err
	}

	// The read side and the reactor. Their error handler is the default:
	// retry the failing event with exponential backoff, never skip it.
	opts := processing.Options{Logger: a.logger, TracerProvider: tp, MeterProvider: cfg.metrics.meterProvider()}
	if a.outstanding, err = projections.NewOutstanding(a.store, opts); err != nil {
		return nil, err
	}
	if a.scheduled, err = projections.NewScheduled(a.store, opts); err != nil {
		return nil, err
	}
	if a.completed, err = projections.NewCompleted(a.store, opts); err != nil {
		return nil, err
	}
	if a.notifier, err = notify.New(a.store, sender, notify.Options{Processing: opts}); err != nil {
		return nil, err
	}
	return a, nil
}

// migrate creates or updates every table: the event store's, the
// processors' positions, the projections and the notifier's.
func (a *app) migrate(ctx context.Context) error {
	if err := a.store.Migrate(ctx); err != nil {
		return err
	}
	for _, p := range a.processors() {
		if err := p.Migrate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// processor is one of the app's event stream processors — a projector or
// the notifier — as the app uses it: the runner runs it, migrate creates
// its tables, and tests wait for it to catch up.
type processor interface {
	runner.Processor
	Migrate(ctx context.Context) error
	WaitFor(ctx context.Context, position int64) error
}

// processors returns the app's event stream processors.
func (a *app) processors() []processor {
	return []processor{a.outstanding, a.scheduled, a.completed, a.notifier}
}

// newRunner returns the runner of the app's processors. It runs each one
// in its own goroutine, retrying its failures per its error handler while
// the others go on, and, when several processes run the processors on one
// database, each only in the process that holds its lease. Its Handler
// serves the processors' status as JSON.
func (a *app) newRunner() (*runner.Runner, error) {
	var ps []runner.Processor
	for _, p := range a.processors() {
		ps = append(ps, p)
	}
	return runner.New(a.store, runner.Options{Logger: a.logger, MeterProvider: a.cfg.metrics.meterProvider()}, ps...)
}

// handler returns the HTTP API; status, if not nil, is served at
// /processors, and the app's metrics, if it has them, at /metrics.
func (a *app) handler(status http.Handler) http.Handler {
	api := web.NewHandler(a.commands, a.db, web.Options{Processors: status, Logger: a.logger, Store: a.store, WaitTimeout: a.cfg.waitTimeout})
	return a.cfg.metrics.serveWith(traceHTTP(api, a.cfg.tracerProvider))
}

// statusHandler returns what the processors' status address serves: r's
// status JSON (and its pause and resume), and the app's metrics, if it has
// them, at /metrics.
func (a *app) statusHandler(r *runner.Runner) http.Handler {
	return a.cfg.metrics.serveWith(r.Handler())
}

// close closes the database.
func (a *app) close() error {
	sqlDB, err := a.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// serve runs an HTTP server for h on addr until ctx ends, then shuts it
// down gracefully. It calls ready with the server's URL once it listens.
func serve(ctx context.Context, addr string, h http.Handler, ready func(url string)) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready("http://" + ln.Addr().String() + "/")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
