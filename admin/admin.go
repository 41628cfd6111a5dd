package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// Processor is an application's event stream processor, as the embedded
// commands use it: *projector.Projector and *reactor.Reactor implement it.
type Processor interface {
	// Name returns the processor's name.
	Name() string
	// Kind returns "projector", "reactor" or "processor".
	Kind() string
	// Types returns the event types it reads; none means every type.
	Types() []string
	// Migrate creates its tables (and the store's).
	Migrate(ctx context.Context) error
	// Reset moves its position back to 0, fencing a running owner; a
	// projector deletes its tables' rows in the same transaction.
	Reset(ctx context.Context) error
	// RunOwned runs it under its lease until ctx ends.
	RunOwned(ctx context.Context, o processing.Ownership) error
}

// App is what an application gives the embedded commands: its store, with
// the registry of its event types (and their upcasters), and its
// processors.
type App struct {
	Store      *eventstore.Store
	Processors []Processor
}

// Config configures [Run]. The zero value runs the standalone commands on
// PostgreSQL.
type Config struct {
	// Name is the command as a user types it, for usage text and
	// messages: "cairn", "todo admin". Empty means "cairn".
	Name string
	// DBEnv names the environment variable that gives -db its default;
	// empty means CAIRN_DB.
	DBEnv string
	// DefaultDB is -db's default when the variable is not set either;
	// empty means -db is required.
	DefaultDB string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(key string) string
	// Open opens the database that -db names; nil means [eventstore.OpenPostgres]
	// for a postgres:// URL, and an error for anything else (package
	// admin does not import the SQLite driver, which needs cgo: pass a
	// function that calls sqlitedb.Open).
	Open func(dsn string) (*gorm.DB, error)
	// App, if set, builds the application's store and processors on the
	// opened database, with the store options to use (the table prefix
	// from -prefix among them): the embedded mode. Nil means the
	// standalone mode, which works on any Cairn database without the
	// application's types: events are shown as stored, and check and
	// rebuild are not available.
	App func(db *gorm.DB, opts eventstore.Options) (App, error)
	// StoreOptions are the options of the stores the commands build
	// themselves (every store in the standalone mode, verify-order's
	// scratch store) and those given to App; -prefix sets TablePrefix.
	StoreOptions eventstore.Options
	// Logger records every destructive action; nil means a text logger on
	// the standard error given to Run.
	Logger *slog.Logger
	// Stdin is where confirmations are read; nil means os.Stdin.
	// Confirmations are asked only when it and Run's standard output are
	// terminals.
	Stdin io.Reader
}

// Errors that [ExitCode] maps to exit statuses.
var (
	// ErrUsage reports a command line that is wrong: exit status 2.
	ErrUsage = errors.New("bad usage")
	// ErrCheckFailed reports a check that ran and found problems (check,
	// verify-order): exit status 1.
	ErrCheckFailed = errors.New("check failed")
	// ErrAborted reports a destructive command that was not confirmed.
	ErrAborted = errors.New("aborted: not confirmed")
	// ErrNotEmbedded reports a command that needs the application's
	// types, run without them (in cmd/cairn): exit status 2.
	ErrNotEmbedded = errors.New("needs the application's event types: run it from the application's own admin command")
	// ErrNoProcessor reports a processor name that the database has no
	// position for, and the application does not know.
	ErrNoProcessor = errors.New("no such processor")
)

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// ExitCode returns the exit status for Run's error: 0 for nil and for a
// request for help (flag.ErrHelp), 2 for bad usage ([ErrUsage],
// [ErrNotEmbedded]), 1 for anything else, a failed check included. An
// interrupt (context.Canceled) of a command that runs until interrupted is
// not an error: Run returns nil.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage), errors.Is(err, ErrNotEmbedded):
		return 2
	default:
		return 1
	}
}

// Main runs [Run] and returns the exit status for it, having printed its
// error, if any, to stderr: what a main function or a subcommand's
// dispatcher calls.
func Main(ctx context.Context, args []string, cfg Config, stdout, stderr io.Writer) int {
	err := Run(ctx, args, cfg, stdout, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.name(), err)
	}
	return ExitCode(err)
}

func (c Config) name() string {
	if c.Name == "" {
		return "cairn"
	}
	return c.Name
}

func (c Config) dbEnv() string {
	if c.DBEnv == "" {
		return "CAIRN_DB"
	}
	return c.DBEnv
}

// Run runs the admin command line args (the command's name first, flags
// before or after it) on the database that -db names, writing its output
// to stdout and its progress and usage to stderr. It returns nil on
// success; see [ExitCode] for the exit status of its errors. Commands that
// run until interrupted (status --watch, events --follow) return nil when
// ctx ends.
func Run(ctx context.Context, args []string, cfg Config, stdout, stderr io.Writer) error {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &cli{cfg: cfg, stdout: stdout, stderr: stderr}
	c.o.db = cfg.DefaultDB
	if v := getenv(cfg.dbEnv()); v != "" {
		c.o.db = v
	}
	c.o.prefix = cfg.StoreOptions.TablePrefix

	global := flag.NewFlagSet(cfg.name(), flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.commonFlags(global, true)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(stdout)
			return err
		}
		c.usage(stderr)
		return usagef("%v", err)
	}
	if global.NArg() == 0 {
		c.usage(stderr)
		return usagef("no command given")
	}
	name := global.Arg(0)
	if name == "help" {
		c.usage(stdout)
		return flag.ErrHelp
	}
	cmd := findCommand(name)
	if cmd == nil {
		return usagef("unknown command %q (run '%s -h' for the commands)", name, cfg.name())
	}
	fs := flag.NewFlagSet(cfg.name()+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.commonFlags(fs, !cmd.streamPrefix)
	if cmd.data {
		fs.BoolVar(&c.o.json, "json", false, "print JSON, one object per line for lists")
	}
	if cmd.destructive {
		fs.BoolVar(&c.o.yes, "yes", false, "do it without asking (needed when not on a terminal)")
	}
	if cmd.flags != nil {
		cmd.flags(fs, &c.o)
	}
	pos, err := parseInterspersed(fs, global.Args()[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandUsage(stdout, cmd, fs)
			return err
		}
		c.commandUsage(stderr, cmd, fs)
		return usagef("%s: %v", cmd.name, err)
	}
	if len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs {
		c.commandUsage(stderr, cmd, fs)
		return usagef("%s: want %s", cmd.name, cmd.argsText())
	}
	if cmd.embedded && cfg.App == nil {
		return fmt.Errorf("%s %w", cmd.name, ErrNotEmbedded)
	}
	if c.o.db == "" {
		c.commandUsage(stderr, cmd, fs)
		return usagef("no database: give -db or set %s", cfg.dbEnv())
	}
	if cmd.check != nil {
		if err := cmd.check(&c.o, pos); err != nil {
			c.commandUsage(stderr, cmd, fs)
			return err
		}
	}
	if err := c.open(); err != nil {
		return err
	}
	defer c.close()
	err = cmd.run(ctx, c, pos)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && cmd.untilInterrupted {
		return nil
	}
	return err
}

// parseInterspersed parses flags that may come before, between and after
// the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// options are the command line's settings.
type options struct {
	db, prefix string
	json, yes  bool

	// status
	watch    bool
	interval durationFlag
	// streams, events
	streamPrefix string
	limit        int
	all          bool
	after        int64
	types        stringsFlag
	correlation  string
	follow       bool
	// reset
	to intOrUnset
	// verify-order
	events, writers int
}

func (c *cli) commonFlags(fs *flag.FlagSet, prefix bool) {
	fs.StringVar(&c.o.db, "db", c.o.db, "SQLite file path or postgres:// URL (env "+c.cfg.dbEnv()+")")
	if prefix {
		fs.StringVar(&c.o.prefix, "prefix", c.o.prefix, "table prefix (default cairn_)")
	}
}

// cli is one run of the command line.
type cli struct {
	cfg    Config
	stdout io.Writer
	stderr io.Writer
	o      options

	db    *gorm.DB
	store *eventstore.Store
	procs []Processor // embedded
	log   *slog.Logger
}

func (c *cli) storeOptions() eventstore.Options {
	opts := c.cfg.StoreOptions
	opts.TablePrefix = c.o.prefix
	return opts
}

// open opens the database and builds the store (and the application's
// processors when embedded).
func (c *cli) open() error {
	c.log = c.cfg.Logger
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(c.stderr, nil))
	}
	var err error
	c.db, err = c.openDB(c.o.db)
	if err != nil {
		return err
	}
	opts := c.storeOptions()
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	if c.cfg.App != nil {
		app, err := c.cfg.App(c.db, opts)
		if err != nil {
			c.close()
			return err
		}
		if app.Store == nil {
			c.close()
			return errors.New("the application gave no store")
		}
		c.store, c.procs = app.Store, app.Processors
		return nil
	}
	c.store, err = eventstore.New(c.db, event.NewRegistry(event.RegistryOptions{}), opts)
	if err != nil {
		c.close()
		return err
	}
	return nil
}

func (c *cli) openDB(dsn string) (*gorm.DB, error) {
	if c.cfg.Open != nil {
		return c.cfg.Open(dsn)
	}
	if isPostgres(dsn) {
		return eventstore.OpenPostgres(dsn)
	}
	return nil, fmt.Errorf("database %q: this command opens PostgreSQL (postgres:// URLs) only", dsn)
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func (c *cli) close() {
	if c.db == nil {
		return
	}
	if s, err := c.db.DB(); err == nil {
		s.Close()
	}
	c.db = nil
}

// processor returns the application's processor of that name, or nil.
func (c *cli) processor(name string) Processor {
	i := slices.IndexFunc(c.procs, func(p Processor) bool { return p.Name() == name })
	if i < 0 {
		return nil
	}
	return c.procs[i]
}
