package testkit

import (
	"iter"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// NewStore returns a store over db, failing t if eventstore.New does. A nil
// opts.Logger means [Logger](t). The store is not migrated; see
// [MigratedStore].
func NewStore(t testing.TB, db *gorm.DB, reg *event.Registry, opts eventstore.Options) *eventstore.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	s, err := eventstore.New(db, reg, opts)
	if err != nil {
		t.Fatalf("eventstore.New() = %v, want nil", err)
	}
	return s
}

// MigratedStore is [NewStore] followed by [Migrate].
func MigratedStore(t testing.TB, db *gorm.DB, reg *event.Registry, opts eventstore.Options) *eventstore.Store {
	t.Helper()
	s := NewStore(t, db, reg, opts)
	Migrate(t, s)
	return s
}

// Migrate runs s.Migrate and fails t on error.
func Migrate(t testing.TB, s *eventstore.Store) {
	t.Helper()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
}

// CloseWhenDone closes db's connection pool when t ends. Register it right
// after opening db, before anything that uses it registers its own
// cleanup, so that the pool closes last.
func CloseWhenDone(t testing.TB, db *gorm.DB) {
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
}

// MustAppend appends and fails t unless the append succeeds with one
// recorded event per datum.
func MustAppend(t testing.TB, s *eventstore.Store, stream string, expected event.ExpectedVersion, data []any, opts ...event.AppendOption) []event.Event {
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

// Collect gathers what seq yields up to and including the first error.
func Collect(seq iter.Seq2[event.Event, error]) ([]event.Event, error) {
	var out []event.Event
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// MustCollect is [Collect] failing t on an error; what names the read in
// the message.
func MustCollect(t testing.TB, what string, seq iter.Seq2[event.Event, error]) []event.Event {
	t.Helper()
	out, err := Collect(seq)
	if err != nil {
		t.Fatalf("%s: error after %d events: %v", what, len(out), err)
	}
	return out
}

// Head returns s.Head, failing t on error.
func Head(t testing.TB, s *eventstore.Store) int64 {
	t.Helper()
	h, err := s.Head(t.Context())
	if err != nil {
		t.Fatalf("Head() = %v, want nil", err)
	}
	return h
}

// StreamVersion returns s.StreamVersion(stream), failing t on error.
func StreamVersion(t testing.TB, s *eventstore.Store, stream string) int64 {
	t.Helper()
	v, err := s.StreamVersion(t.Context(), stream)
	if err != nil {
		t.Fatalf("StreamVersion(%q) = %v, want nil", stream, err)
	}
	return v
}
