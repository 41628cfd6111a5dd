package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
)

// The test domain: a todo list item.

type TodoAdded struct {
	Title string
	Tags  []string
}

type TodoRenamed struct{ Title string }

type TodoCompleted struct{}

type TodoReopened struct{}

var errAlreadyOpen = errors.New("todo is open already")

type Todo struct {
	aggregate.Root
	Title   string
	Tags    []string
	Done    bool
	Renames int
}

func (t *Todo) OnTodoAdded(e TodoAdded) {
	t.Title = e.Title
	t.Tags = append([]string(nil), e.Tags...)
}

func (t *Todo) OnTodoRenamed(e TodoRenamed) {
	t.Title = e.Title
	t.Renames++
}

func (t *Todo) OnTodoCompleted(TodoCompleted) error {
	t.Done = true
	return nil
}

func (t *Todo) OnTodoReopened(TodoReopened) error {
	if !t.Done {
		return errAlreadyOpen
	}
	t.Done = false
	return nil
}

// Rename is a command method.
func (t *Todo) Rename(title string) error {
	if t.Version() == 0 {
		return aggregate.Apply(t, TodoAdded{Title: title})
	}
	return aggregate.Apply(t, TodoRenamed{Title: title})
}

// todoState is a Todo's snapshot: all of its state.
type todoState struct {
	Title   string
	Tags    []string
	Done    bool
	Renames int
}

// MarshalSnapshot makes Todo an aggregate.Snapshotter.
func (t *Todo) MarshalSnapshot() ([]byte, error) {
	return json.Marshal(todoState{t.Title, t.Tags, t.Done, t.Renames})
}

// UnmarshalSnapshot restores what MarshalSnapshot wrote.
func (t *Todo) UnmarshalSnapshot(data []byte) error {
	var s todoState
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	t.Title, t.Tags, t.Done, t.Renames = s.Title, s.Tags, s.Done, s.Renames
	return nil
}

var _ aggregate.Snapshotter = (*Todo)(nil)

func newRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[TodoAdded](reg, "todo.added")
	event.MustRegister[TodoRenamed](reg, "todo.renamed")
	event.MustRegister[TodoCompleted](reg, "todo.completed")
	event.MustRegister[TodoReopened](reg, "todo.reopened")
	return reg
}

// memStore is a small in-memory event store for tests that need no
// database. It keeps data as given (no encoding).
type memStore struct {
	mu      sync.Mutex
	streams map[string][]event.Event
	snaps   map[string]event.Snapshot
	pos     int64
}

func newMemStore() *memStore {
	return &memStore{streams: map[string][]event.Event{}, snaps: map[string]event.Snapshot{}}
}

func (s *memStore) Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events []any, opts ...event.AppendOption) ([]event.Event, error) {
	var o event.AppendOptions
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := int64(len(s.streams[streamID]))
	if !expected.Matches(cur) {
		return nil, &event.VersionConflictError{StreamID: streamID, Expected: expected, Actual: cur}
	}
	var out []event.Event
	for i, d := range events {
		s.pos++
		out = append(out, event.Event{
			Position: s.pos, ID: uuid.New(), StreamID: streamID, Version: cur + int64(i) + 1,
			Data: d, Metadata: o.Metadata, CausationID: o.CausationID, CorrelationID: o.CorrelationID,
			RecordedAt: time.Now(),
		})
	}
	s.streams[streamID] = append(s.streams[streamID], out...)
	return out, nil
}

func (s *memStore) ReadStream(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[event.Event, error] {
	s.mu.Lock()
	evs := slices.Clone(s.streams[streamID])
	s.mu.Unlock()
	return func(yield func(event.Event, error) bool) {
		n := 0
		for _, e := range evs {
			if e.Version < from {
				continue
			}
			if limit > 0 && n == limit {
				return
			}
			n++
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s *memStore) SaveSnapshot(ctx context.Context, snap event.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps[snap.StreamID] = snap
	return nil
}

func (s *memStore) LoadSnapshot(ctx context.Context, streamID string) (event.Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.snaps[streamID]
	return snap, ok, nil
}

var (
	_ aggregate.Store         = (*memStore)(nil)
	_ aggregate.SnapshotStore = (*memStore)(nil)
)
