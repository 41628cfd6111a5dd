package admin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

// ProcessorStatus is one processor as status reports it, from the
// positions table that every process shares (and, embedded, the
// application's processors that have no row yet).
type ProcessorStatus struct {
	Name string `json:"name"`
	// Kind is "projector", "reactor" or "processor"; "unknown" when the
	// application's processors are not at hand (cmd/cairn).
	Kind string `json:"kind"`
	// State is one of: new (no position yet), paused, live (an owner
	// runs it and it has reached the head), catching_up (an owner runs
	// it, behind the head), failed (no owner, an error recorded), stopped
	// (no owner), partitioned (the row of a processor split into
	// partitions, whose rows "name#j/K" follow it; its position is the
	// smallest of theirs).
	State string `json:"state"`
	// Owner holds its lease until LeaseUntil; "" when no live lease.
	Owner      string     `json:"owner"`
	LeaseUntil *time.Time `json:"lease_until"`
	Position   int64      `json:"position"`
	Head       int64      `json:"head"`
	// Lag is the number of events from Position to Head (see
	// eventstore.Store.Distance); LagSeconds is how long ago
	// the oldest event it has not handled was recorded (0 when caught
	// up).
	Lag        int64   `json:"lag"`
	LagSeconds float64 `json:"lag_seconds"`
	// Parked counts its parked events (see processing.Options.Park).
	Parked    *int64     `json:"parked"`
	Paused    bool       `json:"paused"`
	LastError string     `json:"last_error"`
	FailedAt  *time.Time `json:"failed_at"`
}

func runStatus(ctx context.Context, c *cli, _ []string) error {
	if !c.o.watch {
		rows, err := c.status(ctx)
		if err != nil {
			return err
		}
		return c.printStatus(rows)
	}
	tty := isTerminal(c.stdout)
	t := time.NewTicker(time.Duration(c.o.interval))
	defer t.Stop()
	for {
		rows, err := c.status(ctx)
		if err != nil {
			return err
		}
		if tty && !c.o.json {
			fmt.Fprint(c.stdout, "\x1b[H\x1b[2J")
			fmt.Fprintf(c.stdout, "%s — every %v, until interrupted\n\n", time.Now().Format(time.TimeOnly), time.Duration(c.o.interval))
		}
		if err := c.printStatus(rows); err != nil {
			return err
		}
		if !tty && !c.o.json {
			fmt.Fprintln(c.stdout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// status reads every processor's status.
func (c *cli) status(ctx context.Context) ([]ProcessorStatus, error) {
	positions, err := c.store.ListPositions(ctx)
	if err != nil {
		return nil, err
	}
	head, err := c.store.Head(ctx)
	if err != nil {
		return nil, err
	}
	parked, err := c.parkedCounts(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	byName := map[string]eventstore.ProcessorPosition{}
	var names []string
	for _, p := range positions {
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	for _, p := range c.procs {
		if _, ok := byName[p.Name()]; !ok {
			names = append(names, p.Name())
		}
	}
	slices.Sort(names)
	// The smallest position of each partitioned processor's partitions.
	smallest := map[string]int64{}
	for _, p := range positions {
		if base, ok := partitionOf(p.Name); ok {
			if m, seen := smallest[base]; !seen || p.Position < m {
				smallest[base] = p.Position
			}
		}
	}
	rows := make([]ProcessorStatus, 0, len(names))
	for _, name := range names {
		p, hasRow := byName[name]
		s := ProcessorStatus{
			Name: name, Kind: "unknown", Owner: p.Owner, LeaseUntil: optTime(p.LeaseUntil), Position: p.Position,
			Head: max(head, p.Position), Paused: p.Paused, LastError: p.LastError, FailedAt: optTime(p.FailedAt),
		}
		base, isPartition := partitionOf(name)
		if proc := c.processor(base); proc != nil {
			s.Kind = proc.Kind()
		}
		m, partitioned := smallest[name]
		if partitioned && !isPartition {
			// A partitioned processor's own row keeps its pause flag;
			// its partitions' rows, listed after it, the rest.
			s.Position, s.Head, s.Owner, s.LeaseUntil = m, max(head, m), "", nil
		}
		if s.Lag, err = c.store.Distance(ctx, s.Position, s.Head); err != nil {
			return nil, err
		}
		switch {
		case partitioned && !isPartition && !p.Paused:
			s.State = "partitioned"
		case !hasRow:
			s.State = "new"
		case p.Paused:
			s.State = "paused"
		case p.Owner != "" && s.Lag == 0:
			s.State = "live"
		case p.Owner != "":
			s.State = "catching_up"
		case p.LastError != "":
			s.State = "failed"
		default:
			s.State = "stopped"
		}
		if s.Lag > 0 {
			for e, err := range c.store.ReadRaw(ctx, s.Position, 1, eventstore.RawFilter{}) {
				if err != nil {
					return nil, err
				}
				s.LagSeconds = max(0, now.Sub(e.RecordedAt).Round(time.Millisecond).Seconds())
			}
		}
		if parked != nil {
			n := parked[name]
			s.Parked = &n
		}
		rows = append(rows, s)
	}
	return rows, nil
}

func (c *cli) printStatus(rows []ProcessorStatus) error {
	if c.o.json {
		for _, r := range rows {
			if err := c.emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no processors")
		return err
	}
	tw := c.table()
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tOWNER\tLEASE UNTIL\tPOSITION\tHEAD\tLAG\tLAG (s)\tPARKED\tLAST ERROR")
	for _, r := range rows {
		owner, lease := "-", "-"
		if r.Owner != "" {
			owner = r.Owner
			lease = r.LeaseUntil.Local().Format(time.TimeOnly)
		}
		parked := "-"
		if r.Parked != nil {
			parked = strconv.FormatInt(*r.Parked, 10)
		}
		lastErr := "-"
		if r.LastError != "" {
			lastErr = strings.ReplaceAll(r.LastError, "\n", " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%s\t%s\n",
			r.Name, r.Kind, r.State, owner, lease, r.Position, r.Head, r.Lag, r.LagSeconds, parked, lastErr)
	}
	return tw.Flush()
}

// partitionOf returns the name of the processor whose partition's row is
// name ("name#j/K", see processing.PartitionName), and false when name is
// not a partition's row: then it returns name.
func partitionOf(name string) (string, bool) {
	i := strings.LastIndexByte(name, '#')
	if i < 0 {
		return name, false
	}
	j, k, ok := strings.Cut(name[i+1:], "/")
	if _, err := strconv.ParseUint(j, 10, 16); err != nil || !ok {
		return name, false
	}
	if _, err := strconv.ParseUint(k, 10, 16); err != nil {
		return name, false
	}
	return name[:i], true
}
