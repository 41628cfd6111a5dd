package admin

import (
	"context"
	"fmt"
	"iter"
	"time"
)

// parking is what the parked command, and the parked counts of status,
// work through: the Go API of parked events (issue 14). Until it lands,
// newParking returns ErrParkingUnavailable; wiring it is an adapter from
// the store's parking methods to this interface, in newParking.
type parking interface {
	// List yields the processor's parked events, of one stream when
	// stream is not "", in position order.
	List(ctx context.Context, processor, stream string) iter.Seq2[ParkedLine, error]
	// Retry replays the processor's parked events (of one stream when
	// stream is not ""), in order, and returns how many.
	Retry(ctx context.Context, processor, stream string) (int, error)
	// Skip removes them without handling them, and returns how many.
	Skip(ctx context.Context, processor, stream string) (int, error)
	// Counts returns the number of parked events per processor.
	Counts(ctx context.Context) (map[string]int64, error)
}

// newParking returns the parked-events API of c's store.
func (c *cli) newParking() (parking, error) {
	return nil, ErrParkingUnavailable
}

// parkedCounts returns the parked events per processor.
func (c *cli) parkedCounts(ctx context.Context) (map[string]int64, error) {
	p, err := c.newParking()
	if err != nil {
		return nil, err
	}
	return p.Counts(ctx)
}

// ParkedLine is a parked event, as parked list prints it.
type ParkedLine struct {
	Processor string    `json:"processor"`
	Position  int64     `json:"position"`
	Stream    string    `json:"stream"`
	Version   int64     `json:"version"`
	Type      string    `json:"type"`
	Error     string    `json:"error"`
	ParkedAt  time.Time `json:"parked_at"`
}

// ParkedActionLine is the JSON output of parked retry and parked skip.
type ParkedActionLine struct {
	Action    string `json:"action"`
	Processor string `json:"processor"`
	Stream    string `json:"stream,omitempty"`
	Events    int    `json:"events"`
}

func runParked(ctx context.Context, c *cli, args []string) error {
	action, proc, stream := args[0], args[1], ""
	if len(args) == 3 {
		stream = args[2]
	}
	p, err := c.newParking()
	if err != nil {
		return fmt.Errorf("parked %s: %w", action, err)
	}
	where := fmt.Sprintf("processor %q", proc)
	if stream != "" {
		where += fmt.Sprintf(", stream %q", stream)
	}
	var n int
	switch action {
	case "list":
		tw := c.table()
		if !c.o.json {
			fmt.Fprintln(tw, "POSITION\tSTREAM\tVERSION\tTYPE\tPARKED AT\tERROR")
		}
		for l, err := range p.List(ctx, proc, stream) {
			if err != nil {
				return err
			}
			if c.o.json {
				if err := c.emit(l); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", l.Position, l.Stream, l.Version, l.Type, timeText(l.ParkedAt), l.Error)
		}
		if c.o.json {
			return nil
		}
		return tw.Flush()
	case "retry":
		n, err = p.Retry(ctx, proc, stream)
	case "skip":
		if err := c.confirm("parked skip", fmt.Sprintf("Skip the parked events of %s: they are removed without being handled.", where)); err != nil {
			return err
		}
		n, err = p.Skip(ctx, proc, stream)
	}
	if err != nil {
		return err
	}
	c.log.WarnContext(ctx, "admin: parked events "+action, "processor", proc, "stream", stream, "events", n)
	if c.o.json {
		return c.emit(ParkedActionLine{Action: action, Processor: proc, Stream: stream, Events: n})
	}
	_, err = fmt.Fprintf(c.stdout, "parked %s: %d events of %s\n", action, n, where)
	return err
}
