package event_test

import (
	"errors"
	"testing"

	"github.com/cairnhq/cairn/event"
)

func TestExpectedVersionMatches(t *testing.T) {
	tests := []struct {
		expected event.ExpectedVersion
		current  int64
		want     bool
	}{
		{event.Any, 0, true},
		{event.Any, 7, true},
		{event.NoStream, 0, true},
		{event.NoStream, 1, false},
		{event.StreamExists, 0, false},
		{event.StreamExists, 3, true},
		{event.Exact(3), 3, true},
		{event.Exact(3), 2, false},
		{event.Exact(3), 4, false},
		{event.Exact(0), 0, true},
		{event.Exact(0), 1, false},
	}
	for _, tt := range tests {
		if got := tt.expected.Matches(tt.current); got != tt.want {
			t.Errorf("%s.Matches(%d) = %v, want %v", tt.expected, tt.current, got, tt.want)
		}
	}
	if event.Exact(-1).Valid() {
		t.Error("Exact(-1).Valid() = true, want false")
	}
	var zero event.ExpectedVersion
	if !zero.IsAny() {
		t.Error("the zero ExpectedVersion is not Any")
	}
}

func TestVersionConflictError(t *testing.T) {
	var err error = &event.VersionConflictError{StreamID: "todo-1", Expected: event.Exact(2), Actual: 5}
	if !errors.Is(err, event.ErrVersionConflict) {
		t.Fatal("errors.Is(VersionConflictError, ErrVersionConflict) = false")
	}
	if want := `event: version conflict on stream "todo-1": expected 2, stream is at 5`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
