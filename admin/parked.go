package admin

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/cairnhq/cairn/processing"
)

// parking is what the parked command, and the parked counts of status,
// work through: the Go API of parked events (issue 14), adapted by
// storeParking.
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
	return storeParking{c}, nil
}

// storeParking is the parked events of c's store: listed, counted and
// skipped through the store (no types needed), retried through the
// application's processor (embedded only: a retry runs its handlers).
type storeParking struct{ c *cli }

func (p storeParking) List(ctx context.Context, processor, stream string) iter.Seq2[ParkedLine, error] {
	return func(yield func(ParkedLine, error) bool) {
		rows, err := p.c.store.ParkedEvents(ctx, processor, stream, 0)
		if err != nil {
			yield(ParkedLine{}, err)
			return
		}
		for _, r := range rows {
			l := ParkedLine{Processor: r.Processor, Position: r.Position, Stream: r.StreamID, Version: r.Version,
				Type: r.Type, Error: r.Error, ParkedAt: r.FirstFailedAt}
			if r.WaitsOn != 0 && l.Error == "" {
				l.Error = fmt.Sprintf("waits on %d", r.WaitsOn)
			}
			if !yield(l, nil) {
				return
			}
		}
	}
}

// streams returns stream, or every stream with parked events of the
// processor when stream is "".
func (p storeParking) streams(ctx context.Context, processor, stream string) ([]string, error) {
	if stream != "" {
		return []string{stream}, nil
	}
	all, err := p.c.store.ParkedStreams(ctx, processor)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.StreamID
	}
	return out, nil
}

func (p storeParking) Retry(ctx context.Context, processor, stream string) (int, error) {
	proc, ok := p.c.processor(processor).(interface {
		RetryParked(ctx context.Context, streamID string) (int, error)
	})
	if !ok {
		return 0, fmt.Errorf("parked retry %q: %w", processor, ErrNotEmbedded)
	}
	streams, err := p.streams(ctx, processor, stream)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, s := range streams {
		n, err := proc.RetryParked(ctx, s)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (p storeParking) Skip(ctx context.Context, processor, stream string) (int, error) {
	who := p.c.operator()
	streams, err := p.streams(ctx, processor, stream)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, s := range streams {
		rows, err := p.c.store.ParkedEvents(ctx, processor, s, 0)
		if err != nil {
			return total, err
		}
		if len(rows) == 0 {
			continue
		}
		positions := make([]int64, len(rows))
		for i, r := range rows {
			positions[i] = r.Position
		}
		removed, err := p.c.store.Unpark(ctx, processor, positions...)
		if err == nil && !removed {
			err = fmt.Errorf("stream %q: %w", s, processing.ErrNotParked)
		}
		if err != nil {
			return total, err
		}
		for _, r := range rows {
			p.c.log.WarnContext(ctx, "parked event skipped", "processor", processor, "who", who, "position", r.Position,
				"stream", r.StreamID, "type", r.Type, "attempts", r.Attempts, "error", r.Error, "waits_on", r.WaitsOn)
		}
		total += len(rows)
	}
	return total, nil
}

func (p storeParking) Counts(ctx context.Context) (map[string]int64, error) {
	counts, err := p.c.store.ParkedCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(counts))
	for name, n := range counts {
		out[name] = int64(n)
	}
	return out, nil
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
