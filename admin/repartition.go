package admin

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairnhq/cairn/processing"
)

// RepartitionLine is the repartition command's JSON output.
type RepartitionLine struct {
	Processor string `json:"processor"`
	// From and To are the numbers of partitions before and after; 1 is
	// unpartitioned.
	From int `json:"from"`
	To   int `json:"to"`
	// Positions are the new partitions' start positions, by index.
	Positions []int64 `json:"positions"`
}

// runRepartition changes the number of partitions of a stopped processor
// (processing.Repartition): the new partitions start from the saved
// positions of the old ones, skipping what those had handled.
func runRepartition(ctx context.Context, c *cli, args []string) error {
	name, to := args[0], int(c.o.to.v)
	from, err := c.store.Partitions(ctx, name)
	if err != nil {
		return err
	}
	from = max(from, 1)
	rows, err := c.store.ListPositions(ctx)
	if err != nil {
		return err
	}
	var held []string
	found := c.processor(name) != nil
	for _, r := range rows {
		if r.Name == name || strings.HasPrefix(r.Name, name+"#") {
			found = true
			if r.Owner != "" {
				held = append(held, r.Name+" ("+r.Owner+")")
			}
		}
	}
	if !found {
		return fmt.Errorf("repartition %q: %w", name, ErrNoProcessor)
	}
	if len(held) > 0 {
		return fmt.Errorf("repartition %s: %w: leased by running processes: %s; stop them first", name, processing.ErrRunning, strings.Join(held, ", "))
	}
	what := fmt.Sprintf("Re-partition %q from %d to %d partitions. Stop every process running it first; start them again with Partitions: %d.", name, from, to, to)
	if err := c.confirm("repartition", what); err != nil {
		return err
	}
	if err := processing.Repartition(ctx, c.store, name, to); err != nil {
		return err
	}
	c.log.WarnContext(ctx, "admin: processor re-partitioned", "processor", name, "from", from, "to", to, "by", c.operator())
	out := RepartitionLine{Processor: name, From: from, To: to}
	if rows, err = c.store.ListPositions(ctx); err != nil {
		return err
	}
	for j := range to {
		pn := processing.PartitionName(name, j, to)
		for _, r := range rows {
			if r.Name == pn {
				out.Positions = append(out.Positions, r.Position)
			}
		}
	}
	if c.o.json {
		return c.emit(out)
	}
	_, err = fmt.Fprintf(c.stdout, "repartition %s: %d → %d partitions, starting at %v\n", name, from, to, out.Positions)
	return err
}
