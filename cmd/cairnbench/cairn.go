package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// cairnSubject runs the workloads on Cairn's event store.
type cairnSubject struct {
	s *eventstore.Store
}

var _ subject = (*cairnSubject)(nil)

// newCairn creates Cairn's tables in db and returns the store.
func newCairn(ctx context.Context, db *database) (*cairnSubject, error) {
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := event.Register[payload](reg, payloadType); err != nil {
		return nil, err
	}
	if err := registerAccountEvents(reg); err != nil {
		return nil, err
	}
	s, err := eventstore.New(db.gorm, reg, eventstore.Options{TablePrefix: "cairn_"})
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	return &cairnSubject{s: s}, nil
}

func (c *cairnSubject) append(ctx context.Context, stream string, expected int64, evs []payload) error {
	data := make([]any, len(evs))
	for i, p := range evs {
		data[i] = p
	}
	_, err := c.s.Append(ctx, stream, event.Exact(expected), data, event.WithMetadata(benchMetadata()))
	if errors.Is(err, event.ErrVersionConflict) {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

func (c *cairnSubject) appendNext(ctx context.Context, stream string, p payload) error {
	v, err := c.s.StreamVersion(ctx, stream)
	if err != nil {
		return err
	}
	return c.append(ctx, stream, v, []payload{p})
}

func (c *cairnSubject) readStream(ctx context.Context, stream string, fn func(*payload)) (int, error) {
	n := 0
	for e, err := range c.s.ReadStream(ctx, stream, 0, 0) {
		if err != nil {
			return n, err
		}
		if err := take(e, fn); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// readAll reads in pages of minimalPage events, as an application paging
// through the store would (and as the minimal floor does).
func (c *cairnSubject) readAll(ctx context.Context, fn func(*payload)) (int, error) {
	n := 0
	var after int64
	for {
		page := 0
		for e, err := range c.s.ReadAll(ctx, after, minimalPage) {
			if err != nil {
				return n, err
			}
			if err := take(e, fn); err != nil {
				return n, err
			}
			after = e.Position
			page++
		}
		n += page
		if page < minimalPage {
			return n, nil
		}
	}
}

// take passes the event's data to fn.
func take(e event.Event, fn func(*payload)) error {
	p, ok := e.Data.(payload)
	if !ok {
		return fmt.Errorf("event at position %d: data is %T, want payload", e.Position, e.Data)
	}
	fn(&p)
	return nil
}

func (c *cairnSubject) versions(ctx context.Context) (map[string][]int64, error) {
	out := map[string][]int64{}
	for e, err := range c.s.ReadAll(ctx, 0, 0) {
		if err != nil {
			return nil, err
		}
		out[e.StreamID] = append(out[e.StreamID], e.Version)
	}
	return out, nil
}
