package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// Persisted type names of the test events.
const (
	typeOpened    = "test.opened"
	typeDeposited = "test.deposited"
	typeNote      = "test.note"
	typeTick      = "test.tick"
)

type Opened struct {
	Owner string `json:"owner"`
}

type Deposited struct {
	Amount int `json:"amount"`
}

type Note struct {
	Text string `json:"text"`
}

// Tick is written by the concurrency tests: which writer, its n-th event.
type Tick struct {
	Writer int `json:"writer"`
	Seq    int `json:"seq"`
}

// newRegistry returns a registry with every test event type.
func newRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Opened](reg, typeOpened)
	event.MustRegister[Deposited](reg, typeDeposited)
	event.MustRegister[Note](reg, typeNote)
	event.MustRegister[Tick](reg, typeTick)
	return reg
}

// newStore returns a store over db, closed (if the store has a Close
// method) when t ends, before the database closes.
func newStore(t testing.TB, db *gorm.DB, reg *event.Registry, opts eventstore.Options) *eventstore.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testdb.Logger(t)
	}
	s, err := eventstore.New(db, reg, opts)
	if err != nil {
		t.Fatalf("eventstore.New() = %v, want nil", err)
	}
	return s
}

// migrate runs s.Migrate and fails t on error.
func migrate(t testing.TB, s *eventstore.Store) {
	t.Helper()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
}

// setup gives t a fresh database of the kind and a migrated store on it.
func setup(t *testing.T, kind testdb.Kind, opts eventstore.Options) (testdb.DB, *eventstore.Store) {
	t.Helper()
	db := testdb.New(t, kind)
	s := newStore(t, db.Gorm, newRegistry(), opts)
	migrate(t, s)
	return db, s
}

// openAgain opens a second, independent connection pool to db.
func openAgain(t testing.TB, db testdb.DB) *gorm.DB {
	t.Helper()
	g, err := testdb.Open(db.Kind, db.DSN)
	if err != nil {
		t.Fatalf("open %s again: %v", db.Kind, err)
	}
	t.Cleanup(func() {
		if s, err := g.DB(); err == nil {
			s.Close()
		}
	})
	return g
}

// mustAppend appends and fails t on error.
func mustAppend(t testing.TB, s *eventstore.Store, stream string, expected event.ExpectedVersion, data []any, opts ...event.AppendOption) []event.Event {
	t.Helper()
	got, err := s.Append(t.Context(), stream, expected, data, opts...)
	if err != nil {
		t.Fatalf("Append(%q, %v) = %v, want nil", stream, expected, err)
	}
	if len(got) != len(data) {
		t.Fatalf("Append(%q, %v) returned %d events, want %d", stream, expected, len(got), len(data))
	}
	return got
}

// collect gathers what seq yields up to and including the first error.
func collect(seq iter.Seq2[event.Event, error]) ([]event.Event, error) {
	var out []event.Event
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// mustCollect is collect failing t on an error.
func mustCollect(t testing.TB, what string, seq iter.Seq2[event.Event, error]) []event.Event {
	t.Helper()
	out, err := collect(seq)
	if err != nil {
		t.Fatalf("%s: error after %d events: %v", what, len(out), err)
	}
	return out
}

func head(t testing.TB, s *eventstore.Store) int64 {
	t.Helper()
	h, err := s.Head(t.Context())
	if err != nil {
		t.Fatalf("Head() = %v, want nil", err)
	}
	return h
}

func streamVersion(t testing.TB, s *eventstore.Store, stream string) int64 {
	t.Helper()
	v, err := s.StreamVersion(t.Context(), stream)
	if err != nil {
		t.Fatalf("StreamVersion(%q) = %v, want nil", stream, err)
	}
	return v
}

// diffEvent describes how got differs from want, or returns "".
func diffEvent(got, want event.Event) string {
	var d []string
	if got.Position != want.Position {
		d = append(d, fmt.Sprintf("Position %d, want %d", got.Position, want.Position))
	}
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %v, want %v", got.ID, want.ID))
	}
	if got.StreamID != want.StreamID {
		d = append(d, fmt.Sprintf("StreamID %q, want %q", got.StreamID, want.StreamID))
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("Version %d, want %d", got.Version, want.Version))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	if !reflect.DeepEqual(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("Data %s, want %s", short(got.Data), short(want.Data)))
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		d = append(d, fmt.Sprintf("Metadata %q, want %q", got.Metadata, want.Metadata))
	}
	if got.CausationID != want.CausationID {
		d = append(d, fmt.Sprintf("CausationID %q, want %q", got.CausationID, want.CausationID))
	}
	if got.CorrelationID != want.CorrelationID {
		d = append(d, fmt.Sprintf("CorrelationID %q, want %q", got.CorrelationID, want.CorrelationID))
	}
	if !got.RecordedAt.Equal(want.RecordedAt) {
		d = append(d, fmt.Sprintf("RecordedAt %v, want %v", got.RecordedAt, want.RecordedAt))
	}
	if got.RecordedAt.Location() != time.UTC {
		d = append(d, fmt.Sprintf("RecordedAt location %q, want UTC", got.RecordedAt.Location()))
	}
	return strings.Join(d, "; ")
}

func short(v any) string {
	s := fmt.Sprintf("%T%+v", v, v)
	if len(s) > 200 {
		s = s[:200] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

// checkEvents reports every difference between got and want.
func checkEvents(t testing.TB, what string, got, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d events %v, want %d %v", what, len(got), places(got), len(want), places(want))
	}
	n := 0
	for i := range min(len(got), len(want)) {
		if d := diffEvent(got[i], want[i]); d != "" {
			t.Errorf("%s: event %d: %s", what, i, d)
			if n++; n == 10 {
				t.Errorf("%s: more differences not shown", what)
				return
			}
		}
	}
}

// places lists events as stream@version#position, shortened.
func places(evs []event.Event) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range evs {
		if i == 12 {
			fmt.Fprintf(&b, " …%d more", len(evs)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s@%d#%d", e.StreamID, e.Version, e.Position)
	}
	b.WriteByte(']')
	return b.String()
}

// checkConflict checks that err is a version conflict with these details.
func checkConflict(t testing.TB, err error, stream string, expected event.ExpectedVersion, actual int64) {
	t.Helper()
	if !errors.Is(err, event.ErrVersionConflict) {
		t.Errorf("Append(%q, %v) = %v, want ErrVersionConflict", stream, expected, err)
		return
	}
	var vc *event.VersionConflictError
	if !errors.As(err, &vc) {
		t.Errorf("Append(%q, %v) = %v, want a *event.VersionConflictError in the chain", stream, expected, err)
		return
	}
	if vc.StreamID != stream || vc.Expected != expected || vc.Actual != actual {
		t.Errorf("Append(%q, %v): VersionConflictError{StreamID: %q, Expected: %v, Actual: %d}, want {%q, %v, %d}",
			stream, expected, vc.StreamID, vc.Expected, vc.Actual, stream, expected, actual)
	}
}

// follower consumes a subscription in a goroutine.
type follower struct {
	mu     sync.Mutex
	got    []event.Event
	cancel context.CancelFunc
	done   chan struct{}
	last   event.Event // what came with the final error
	err    error       // the error that ended the subscription
}

// follow starts consuming s.Subscribe(after, types...) until its context
// is cancelled or the subscription yields an error.
func follow(ctx context.Context, s *eventstore.Store, after int64, types ...string) *follower {
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for e, err := range s.Subscribe(ctx, after, types...) {
			f.mu.Lock()
			if err != nil {
				f.last, f.err = e, err
				f.mu.Unlock()
				return
			}
			f.got = append(f.got, e)
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *follower) progress() (n int, last int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) > 0 {
		last = f.got[len(f.got)-1].Position
	}
	return len(f.got), last
}

// waitFor waits until the follower has received want: as many events, or
// one at or past the position of want's last event (so that a
// subscription that skipped events does not keep the test waiting). It
// reports false (and fails t) if the subscription ends first or nothing
// arrives for a long time.
func (f *follower) waitFor(t testing.TB, want []event.Event) bool {
	t.Helper()
	const stall = 30 * time.Second
	if len(want) == 0 {
		return true
	}
	end := want[len(want)-1].Position
	last, lastChange := -1, time.Now()
	for {
		c, pos := f.progress()
		if c >= len(want) || pos >= end {
			return true
		}
		if c != last {
			last, lastChange = c, time.Now()
		}
		if time.Since(lastChange) > stall {
			t.Errorf("Subscribe: stuck at %d events (position %d) for %v, want %d events up to position %d", c, pos, stall, len(want), end)
			return false
		}
		select {
		case <-f.done:
			if c, pos := f.progress(); c < len(want) && pos < end {
				t.Errorf("Subscribe ended after %d events with %v, want %d events", c, f.err, len(want))
				return false
			}
			return true
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// await waits for want (see waitFor), gives the follower a moment to show
// any extra (duplicate) event, cancels it and checks that the
// subscription ended with context.Canceled and a zero event. It returns
// what the follower received, for the caller to compare with want.
func (f *follower) await(t testing.TB, want []event.Event) []event.Event {
	t.Helper()
	f.waitFor(t, want)
	time.Sleep(50 * time.Millisecond)
	got, err := f.stop(t)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe ended with %v after %d events, want context.Canceled", err, len(got))
	}
	return got
}

// stop cancels the subscription, waits for it to end and returns what it
// received and the error it ended with.
func (f *follower) stop(t testing.TB) ([]event.Event, error) {
	t.Helper()
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("Subscribe did not end within 30s of its context being cancelled")
	}
	if f.err != nil && !reflect.DeepEqual(f.last, event.Event{}) {
		t.Errorf("Subscribe yielded event %s with its final error %v, want the zero Event", places([]event.Event{f.last}), f.err)
	}
	return f.got, f.err
}

// checkOrder checks that positions strictly increase and that no event ID
// repeats.
func checkOrder(t testing.TB, what string, evs []event.Event) {
	t.Helper()
	seen := make(map[uuid.UUID]int, len(evs))
	bad := 0
	for i, e := range evs {
		if i > 0 && e.Position <= evs[i-1].Position {
			t.Errorf("%s: event %d at position %d follows position %d, want strictly increasing", what, i, e.Position, evs[i-1].Position)
			bad++
		}
		if j, dup := seen[e.ID]; dup {
			t.Errorf("%s: event %d (ID %v, position %d) repeats event %d", what, i, e.ID, e.Position, j)
			bad++
		}
		seen[e.ID] = i
		if bad >= 10 {
			t.Errorf("%s: more errors not shown", what)
			return
		}
	}
}

// positionsEqual compares the positions of got and want, reporting the
// first place they differ.
func positionsEqual(t testing.TB, what string, got, want []event.Event) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i].Position != want[i].Position || got[i].ID != want[i].ID {
			t.Errorf("%s: event %d is %s (ID %v), want %s (ID %v): an event was skipped or reordered",
				what, i, places(got[i:i+1]), got[i].ID, places(want[i:i+1]), want[i].ID)
			return
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got), len(want))
	}
}
