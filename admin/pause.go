package admin

import (
	"context"
	"fmt"
	"os/user"
)

// PauseLine is what pause and resume print with --json.
type PauseLine struct {
	Processor string `json:"processor"`
	Paused    bool   `json:"paused"`
	// Owner is the holder of the processor's lease, "" when none: the
	// process that notices the flag and stops (or goes on) handling.
	Owner string `json:"owner"`
}

// runPause sets the processor's pause flag in its position row: every
// process running it notices within its pause check interval (see
// processing.Options.PauseCheckInterval), stops handling events and keeps
// its lease and its place; resume lets it go on from there.
func runPause(paused bool) func(ctx context.Context, c *cli, args []string) error {
	return func(ctx context.Context, c *cli, args []string) error {
		name := args[0]
		row, hasRow, err := c.position(ctx, name)
		if err != nil {
			return err
		}
		if !hasRow {
			return fmt.Errorf("%s %q: %w", verb(paused), name, ErrNoProcessor)
		}
		if err := c.store.SetPaused(ctx, name, paused); err != nil {
			return err
		}
		c.log.InfoContext(ctx, "admin: processor "+map[bool]string{true: "paused", false: "resumed"}[paused],
			"processor", name, "owner", row.Owner, "by", c.operator())
		if c.o.json {
			return c.emit(PauseLine{Processor: name, Paused: paused, Owner: row.Owner})
		}
		what := "paused: it handles nothing until resumed, and keeps its lease and its place"
		if !paused {
			what = "resumed: it goes on from where it stopped"
		}
		_, err = fmt.Fprintf(c.stdout, "%s %s\n", name, what)
		return err
	}
}

func verb(paused bool) string {
	if paused {
		return "pause"
	}
	return "resume"
}

// operator names who runs an action, for the audit records: the command
// and the OS user.
func (c *cli) operator() string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	return c.cfg.name() + " (" + who + ")"
}
