package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// ResetLine is the reset command's JSON output.
type ResetLine struct {
	Processor string `json:"processor"`
	Kind      string `json:"kind"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	// TablesCleared tells whether a projector's tables were emptied with
	// its position (embedded only).
	TablesCleared bool `json:"tables_cleared"`
}

// position returns the processor's row, and false when it has none.
func (c *cli) position(ctx context.Context, name string) (eventstore.ProcessorPosition, bool, error) {
	rows, err := c.store.ListPositions(ctx)
	if err != nil {
		return eventstore.ProcessorPosition{}, false, err
	}
	for _, r := range rows {
		if r.Name == name {
			return r, true, nil
		}
	}
	return eventstore.ProcessorPosition{}, false, nil
}

func runReset(ctx context.Context, c *cli, args []string) error {
	name := args[0]
	row, hasRow, err := c.position(ctx, name)
	if err != nil {
		return err
	}
	proc := c.processor(name)
	if !hasRow && proc == nil {
		return fmt.Errorf("reset %q: %w", name, ErrNoProcessor)
	}
	kind := "unknown"
	if proc != nil {
		kind = proc.Kind()
	} else if k, err := c.store.Partitions(ctx, name); err != nil {
		return err
	} else if k > 1 {
		return usagef("reset %s: it has %d partitions: reset it from the application's admin command, which knows its tables", name, k)
	}
	projector := proc != nil && kind == "projector"
	stateful := false
	if s, ok := proc.(interface{ Stateful() bool }); ok && s.Stateful() {
		stateful = true
	}
	to := c.o.to.v
	if projector && to != 0 {
		return usagef("reset %s: a projector resets to 0 only (its tables are rebuilt from the first event); --to moves other processors", name)
	}
	if stateful && c.o.to.set && to != 0 {
		return usagef("reset %s: a stateful reactor resets to 0 only (its state tables are emptied with its position); --to would leave its state ahead of its position", name)
	}
	what := fmt.Sprintf("Reset %s %q from position %d to %d.", kind, name, row.Position, to)
	switch {
	case projector:
		what += " Its tables are emptied in the same transaction, and rebuilt from the first event."
	case stateful:
		what += " Its state tables are emptied in the same transaction, and rebuilt from the first event: its side effects happen again (the events it emits are not stored twice)."
	case proc == nil:
		what += " Only its position moves: if it is a projector or a stateful reactor, its tables are not cleared (the application's own admin command clears them)."
	case kind == "reactor" && to < row.Position:
		what += fmt.Sprintf(" It handles the events after %d again: their side effects happen again (the events it emits are not stored twice).", to)
	}
	if row.Owner != "" {
		what += fmt.Sprintf(" Its owner %s stops at its next batch and goes on from there.", row.Owner)
	}
	if err := c.confirm("reset", what); err != nil {
		return err
	}
	if proc != nil && (projector || stateful || !c.o.to.set) {
		err = proc.Reset(ctx)
	} else {
		var moved bool
		moved, err = c.store.MovePosition(ctx, name, to)
		if err == nil && !moved {
			err = fmt.Errorf("reset %q: %w", name, ErrNoProcessor)
		}
	}
	if err != nil {
		return err
	}
	c.log.WarnContext(ctx, "admin: processor reset", "processor", name, "kind", kind, "from", row.Position, "to", to,
		"tables_cleared", projector || stateful, "owner", row.Owner)
	out := ResetLine{Processor: name, Kind: kind, From: row.Position, To: to, TablesCleared: projector || stateful}
	if c.o.json {
		return c.emit(out)
	}
	_, err = fmt.Fprintf(c.stdout, "reset %s: position %d → %d%s\n", name, out.From, out.To, map[bool]string{true: ", tables emptied"}[projector || stateful])
	return err
}

// RebuildLine is the rebuild command's JSON output.
type RebuildLine struct {
	Projector string `json:"projector"`
	// Through is the position a reset-and-replay rebuild replayed to;
	// Label the version a zero-downtime rebuild swapped in.
	Through int64   `json:"through,omitempty"`
	Label   string  `json:"label,omitempty"`
	Seconds float64 `json:"seconds"`
}

// rebuildPoll is how often rebuild reads the projector's position.
const rebuildPoll = 200 * time.Millisecond

// runRebuild resets a projector with its tables and replays the store into
// it until it has passed the head as it was at the start: in this process
// when it can take the projector's lease, or in the process that holds it
// (which the reset fences, and which then starts over from the first
// event). Either way it shows the projector's progress.
//
// Until zero-downtime rebuilds exist (versioned projections), queries read
// a projection that is empty and then partial while this runs.
func runRebuild(ctx context.Context, c *cli, args []string) error {
	name := args[0]
	proc := c.processor(name)
	if proc == nil {
		return fmt.Errorf("rebuild %q: %w among the application's processors", name, ErrNoProcessor)
	}
	if proc.Kind() != "projector" {
		return usagef("rebuild %s: it is a %s; only projectors are rebuilt (a reactor would repeat its side effects: use reset)", name, proc.Kind())
	}
	if v, ok := asVersioned(proc); ok {
		return runVersionedRebuild(ctx, c, name, proc, v)
	}
	head, err := c.store.Head(ctx)
	if err != nil {
		return err
	}
	if err := c.confirm("rebuild", fmt.Sprintf("Rebuild projector %q: empty its tables and replay every event up to position %d. Until it is done, queries read a partial projection.", name, head)); err != nil {
		return err
	}
	start := time.Now()
	if err := proc.Reset(ctx); err != nil {
		return err
	}
	c.log.WarnContext(ctx, "admin: projector rebuild started", "projector", name, "through", head)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- proc.RunOwned(runCtx, processing.Ownership{}) }()
	bar := c.progress("rebuild "+name, "positions", head)
	t := time.NewTicker(rebuildPoll)
	defer t.Stop()
	for {
		pos, err := c.progressOf(ctx, name)
		if err != nil {
			cancel()
			<-errc
			return err
		}
		bar.set(pos)
		if pos >= head {
			break
		}
		select {
		case err := <-errc:
			bar.done()
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("rebuild %s: stopped at position %d of %d: %w", name, pos, head, err)
		case <-t.C:
		}
	}
	bar.done()
	cancel()
	if err := <-errc; err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	elapsed := time.Since(start)
	c.log.InfoContext(ctx, "admin: projector rebuilt", "projector", name, "through", head, "elapsed", elapsed)
	if c.o.json {
		return c.emit(RebuildLine{Projector: name, Through: head, Seconds: elapsed.Seconds()})
	}
	_, err = fmt.Fprintf(c.stdout, "rebuilt %s through position %d in %v\n", name, head, elapsed.Round(time.Millisecond))
	return err
}

// progressOf returns the saved position of the processor name: its row's,
// or for a partitioned processor the smallest of its partitions'.
func (c *cli) progressOf(ctx context.Context, name string) (int64, error) {
	rows, err := c.store.ListPositions(ctx)
	if err != nil {
		return 0, err
	}
	pos, smallest := int64(0), int64(-1)
	for _, r := range rows {
		if r.Name == name {
			pos = r.Position
		}
		if base, ok := partitionOf(r.Name); ok && base == name && (smallest < 0 || r.Position < smallest) {
			smallest = r.Position
		}
	}
	if smallest >= 0 {
		return smallest, nil
	}
	return pos, nil
}
