package testkit

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
)

// DiffEvent describes how got differs from want, field by field, or
// returns "" when they are equal. RecordedAt must also be in UTC.
func DiffEvent(got, want event.Event) string {
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

// CheckEvents reports every difference between got and want (up to ten).
func CheckEvents(t testing.TB, what string, got, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d events %v, want %d %v", what, len(got), Places(got), len(want), Places(want))
	}
	n := 0
	for i := range min(len(got), len(want)) {
		if d := DiffEvent(got[i], want[i]); d != "" {
			t.Errorf("%s: event %d: %s", what, i, d)
			if n++; n == 10 {
				t.Errorf("%s: more differences not shown", what)
				return
			}
		}
	}
}

// Places lists events as stream@version#position, shortened after 12.
func Places(evs []event.Event) string {
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

// CheckOrder checks that positions strictly increase and that no event ID
// repeats.
func CheckOrder(t testing.TB, what string, evs []event.Event) {
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

// PositionsEqual compares the positions and IDs of got and want, reporting
// the first place they differ: an event skipped, repeated or reordered.
func PositionsEqual(t testing.TB, what string, got, want []event.Event) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i].Position != want[i].Position || got[i].ID != want[i].ID {
			t.Errorf("%s: event %d is %s (ID %v), want %s (ID %v): an event was skipped or reordered",
				what, i, Places(got[i:i+1]), got[i].ID, Places(want[i:i+1]), want[i].ID)
			return
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got), len(want))
	}
}

// CheckStored checks that every acknowledged event is in all exactly as
// acknowledged and that all holds nothing else.
func CheckStored(t testing.TB, all []event.Event, acked []event.Event) {
	t.Helper()
	byID := make(map[uuid.UUID]int, len(all))
	for i, e := range all {
		byID[e.ID] = i
	}
	bad := 0
	for _, e := range acked {
		i, ok := byID[e.ID]
		switch {
		case !ok:
			t.Errorf("acknowledged event %s (ID %v) is not stored", Places([]event.Event{e}), e.ID)
			bad++
		default:
			if d := DiffEvent(all[i], e); d != "" {
				t.Errorf("acknowledged event %v: stored %s", e.ID, d)
				bad++
			}
		}
		if bad == 10 {
			t.Errorf("more differences not shown")
			break
		}
	}
	if len(all) != len(acked) {
		t.Errorf("the store holds %d events, want the %d acknowledged", len(all), len(acked))
	}
}

// CheckConflict checks that err, returned by op on stream, is a version
// conflict that errors.Is matches against [event.ErrVersionConflict],
// with a [*event.VersionConflictError] of these details in its chain and a
// message naming the stream, the expected and the actual version.
func CheckConflict(t testing.TB, op string, err error, stream string, expected event.ExpectedVersion, actual int64) {
	t.Helper()
	if !errors.Is(err, event.ErrVersionConflict) {
		t.Errorf("%s(%q, %v) = %v, want ErrVersionConflict", op, stream, expected, err)
		return
	}
	var vc *event.VersionConflictError
	if !errors.As(err, &vc) {
		t.Errorf("%s(%q, %v) = %v, want a *event.VersionConflictError in the chain", op, stream, expected, err)
		return
	}
	if vc.StreamID != stream || vc.Expected != expected || vc.Actual != actual {
		t.Errorf("%s(%q, %v): VersionConflictError{StreamID: %q, Expected: %v, Actual: %d}, want {%q, %v, %d}",
			op, stream, expected, vc.StreamID, vc.Expected, vc.Actual, stream, expected, actual)
	}
	msg := err.Error()
	for _, part := range []string{strconv.Quote(stream), expected.String(), strconv.FormatInt(actual, 10)} {
		if !strings.Contains(msg, part) {
			t.Errorf("%s(%q, %v) = %q, want the message to name %s", op, stream, expected, msg, part)
		}
	}
}
