package admin

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// command is one of the admin commands.
type command struct {
	name     string
	args     string // the positional arguments, for usage
	summary  string
	examples []string
	minArgs  int
	maxArgs  int
	// data: it prints data (--json); destructive: it asks first (--yes);
	// embedded: it needs the application's types; untilInterrupted: an
	// interrupt ends it successfully.
	data, destructive, embedded, untilInterrupted bool
	// streamPrefix: -prefix after the command is a stream ID prefix.
	streamPrefix bool

	flags func(fs *flag.FlagSet, o *options)
	check func(o *options, args []string) error
	run   func(ctx context.Context, c *cli, args []string) error
}

func (cmd *command) argsText() string {
	switch {
	case cmd.maxArgs == 0:
		return "no arguments"
	case cmd.args != "":
		return cmd.args
	}
	return strconv.Itoa(cmd.minArgs) + " arguments"
}

// commands lists the commands in the order usage shows them.
func commands() []*command {
	return []*command{
		{
			name: "status", summary: "every processor: kind, state, owner, lease, position, head, lag, parked count, last error",
			data: true, untilInterrupted: true,
			examples: []string{"status", "status --json", "status --watch --interval 5s"},
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.watch, "watch", false, "refresh until interrupted")
				o.interval = durationFlag(2 * time.Second)
				fs.Var(&o.interval, "interval", "time between refreshes with --watch")
			},
			run: runStatus,
		},
		{
			name: "streams", summary: "streams by ID: version, first and last recorded time",
			data: true, streamPrefix: true,
			examples: []string{"streams --prefix todo- --limit 20", "-prefix myapp_ streams"},
			flags: func(fs *flag.FlagSet, o *options) {
				// After the command, -prefix is the stream ID prefix: the
				// table prefix goes before it.
				fs.StringVar(&o.streamPrefix, "prefix", "", "only streams whose ID starts with this (give the table prefix before the command)")
				fs.IntVar(&o.limit, "limit", 1000, "at most this many streams; 0 for all")
			},
			run: runStreams,
		},
		{
			name: "events", args: "STREAM, or --all", summary: "one line per event: position, stream, version, type, recorded time, data as stored",
			data: true, untilInterrupted: true, maxArgs: 1,
			examples: []string{"events todo-6f1c…", "events --all --after 1200 --type todo_added --type todo_completed",
				"events --all --correlation 4b1d… --json", "events --all --follow"},
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.all, "all", false, "every stream, in global order")
				fs.Int64Var(&o.after, "after", 0, "only events after this global position")
				fs.Var(&o.types, "type", "only events of this type (repeatable)")
				fs.StringVar(&o.correlation, "correlation", "", "only events with this correlation ID")
				fs.BoolVar(&o.follow, "follow", false, "then print new events as they are stored, until interrupted")
				fs.IntVar(&o.limit, "limit", 0, "at most this many events; 0 for all")
			},
			check: func(o *options, args []string) error {
				if o.all == (len(args) == 1) {
					return usagef("events: give a stream or --all, not both")
				}
				if o.after < 0 || o.limit < 0 {
					return usagef("events: --after and --limit must not be negative")
				}
				return nil
			},
			run: runEvents,
		},
		{
			name: "reset", args: "PROCESSOR", summary: "move a processor back to the start (or --to a position); fenced: a running owner stops and resumes from there",
			data: true, destructive: true, minArgs: 1, maxArgs: 1,
			examples: []string{"reset outstanding_todos", "reset todo_completed_notifier --to 1500 --yes"},
			flags: func(fs *flag.FlagSet, o *options) {
				fs.Var(&o.to, "to", "the position to move to (default 0); a projector of the application resets to 0 only")
			},
			run: runReset,
		},
		{
			name: "pause", args: "PROCESSOR", summary: "pause a processor in every process: it handles nothing, keeping its lease and its place, until resumed",
			data: true, minArgs: 1, maxArgs: 1,
			examples: []string{"pause todo_completed_notifier"},
			run:      runPause(true),
		},
		{
			name: "resume", args: "PROCESSOR", summary: "resume a paused processor: it goes on from where it stopped",
			data: true, minArgs: 1, maxArgs: 1,
			examples: []string{"resume todo_completed_notifier --json"},
			run:      runPause(false),
		},
		{
			name: "repartition", args: "PROCESSOR", summary: "change a stopped processor's number of partitions (--to K; 1 unpartitions it) from its saved positions, skipping and repeating nothing",
			data: true, destructive: true, minArgs: 1, maxArgs: 1,
			examples: []string{"repartition todo_completed_notifier --to 4 --yes"},
			flags: func(fs *flag.FlagSet, o *options) {
				fs.Var(&o.to, "to", "the new number of partitions")
			},
			check: func(o *options, args []string) error {
				if !o.to.set || o.to.v < 1 {
					return usagef("repartition: give the new number of partitions with --to K (K ≥ 1)")
				}
				return nil
			},
			run: runRepartition,
		},
		{
			name: "rebuild", args: "PROJECTOR", summary: "reset a projector with its tables and replay every event, with progress until caught up",
			data: true, destructive: true, embedded: true, minArgs: 1, maxArgs: 1,
			examples: []string{"rebuild outstanding_todos --yes"},
			run:      runRebuild,
		},
		{
			name: "parked", args: "list|retry|skip PROCESSOR [STREAM]", summary: "a processor's parked events: list them, retry them in order, or skip them",
			data: true, destructive: true, minArgs: 2, maxArgs: 3,
			examples: []string{"parked list outstanding_todos", "parked retry outstanding_todos todo-6f1c…", "parked skip outstanding_todos todo-6f1c… --yes"},
			check: func(o *options, args []string) error {
				switch args[0] {
				case "list", "retry", "skip":
					return nil
				}
				return usagef("parked: unknown action %q, want list, retry or skip", args[0])
			},
			run: runParked,
		},
		{
			name: "check", summary: "decode every stored event through the registry and its upcasters; exit 1 on any failure",
			data: true, embedded: true,
			examples: []string{"check", "check --json"},
			run:      runCheck,
		},
		{
			name: "verify-order", summary: "run the store's concurrent-writer ordering check on this database, in scratch tables dropped afterwards",
			data:     true,
			examples: []string{"verify-order", "verify-order --events 20000 --writers 16"},
			flags: func(fs *flag.FlagSet, o *options) {
				fs.IntVar(&o.events, "events", 4000, "events to write in all")
				fs.IntVar(&o.writers, "writers", 8, "concurrent writers")
			},
			check: func(o *options, args []string) error {
				if o.events < 1 || o.writers < 1 || o.writers > o.events {
					return usagef("verify-order: want 1 ≤ --writers ≤ --events")
				}
				return nil
			},
			run: runVerifyOrder,
		},
		{
			name: "migrate", summary: "create or update every table (the application's processors' too, when embedded)",
			data:     true,
			examples: []string{"migrate"},
			run:      runMigrate,
		},
	}
}

func findCommand(name string) *command {
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

func (c *cli) usage(w io.Writer) {
	name := c.cfg.name()
	fmt.Fprintf(w, "Usage: %s [-db DSN] [-prefix P] COMMAND [flags] [arguments]\n\n", name)
	fmt.Fprintf(w, "Look inside a Cairn database and act on it.")
	if c.cfg.App == nil {
		fmt.Fprintf(w, " Event data is shown as stored; commands marked *\nneed the application's types and run only from its own admin command.")
	}
	fmt.Fprint(w, "\n\nCommands:\n")
	for _, cmd := range commands() {
		mark := " "
		if cmd.embedded && c.cfg.App == nil {
			mark = "*"
		}
		fmt.Fprintf(w, " %s %-13s %s\n", mark, cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, `
Flags, before or after the command:
  -db DSN       SQLite file path or postgres:// URL (default from %s)
  -prefix P     table prefix (default cairn_)
  --json        on every command that prints data: JSON, one object per line for lists
  --yes         on destructive commands (reset, rebuild, parked skip) when not on a terminal

Exit status: 0 ok, 1 error or failed check, 2 bad usage.

Examples:
  %[2]s status --json
  %[2]s events --all --follow
  %[2]s reset outstanding_todos --yes
  %[2]s check

Run '%[2]s COMMAND -h' for a command's flags.
`, c.cfg.dbEnv(), name)
}

func (c *cli) commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	name := c.cfg.name()
	args := ""
	if cmd.args != "" {
		args = " " + cmd.args
	}
	fmt.Fprintf(w, "Usage: %s %s [flags]%s\n\n%s.\n", name, cmd.name, args, strings.ToUpper(cmd.summary[:1])+cmd.summary[1:])
	if cmd.embedded && c.cfg.App == nil {
		fmt.Fprintf(w, "It needs the application's event types: run it from the application's own admin command.\n")
	}
	fmt.Fprint(w, "\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, "\nExamples:\n")
	for _, e := range cmd.examples {
		fmt.Fprintf(w, "  %s %s\n", name, e)
	}
}

// durationFlag is a time.Duration flag that must be positive.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }
func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive duration such as 2s")
	}
	*d = durationFlag(v)
	return nil
}

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// intOrUnset is an int64 flag that knows whether it was given.
type intOrUnset struct {
	v   int64
	set bool
}

func (f *intOrUnset) String() string {
	if !f.set {
		return ""
	}
	return strconv.FormatInt(f.v, 10)
}

func (f *intOrUnset) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("want a position, 0 or more")
	}
	f.v, f.set = v, true
	return nil
}
