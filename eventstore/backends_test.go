package eventstore_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

type Measure struct {
	F float64 `json:"f"`
	I int64   `json:"i"`
	U uint64  `json:"u"`
}

// The same input gets the same answer from SQLite and PostgreSQL: both
// accept it and give back the same events, or both reject it the same way.
func TestSameAnswerOnBothBackends(t *testing.T) {
	t.Parallel()
	kinds := testdb.Kinds()
	if len(kinds) < 2 {
		t.Skipf("needs both backends; set %s", testdb.EnvPostgres)
	}
	deletedID := uuid.New()
	probes := []struct {
		name  string
		setup func(t *testing.T, s *eventstore.Store)
		data  []any
		opts  []event.AppendOption
	}{
		{name: "NUL_in_data", data: []any{testkit.Noted{Text: "a\x00b"}}},
		{name: "NUL_in_metadata_value", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithMetadata(map[string]string{"k": "a\x00b"})}},
		{name: "NUL_in_metadata_key", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithMetadata(map[string]string{"a\x00b": "v"})}},
		{name: "NUL_in_causation_ID", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithCausationID("a\x00b")}},
		{name: "NUL_in_correlation_ID", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithCorrelationID("a\x00b")}},
		{name: "invalid_UTF-8_in_data", data: []any{testkit.Noted{Text: "a\xffb"}}},
		{name: "invalid_UTF-8_in_metadata", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithMetadata(map[string]string{"k": "a\xffb"})}},
		{name: "invalid_UTF-8_in_causation_ID", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithCausationID("a\xffb")}},
		{name: "empty_metadata_key", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithMetadata(map[string]string{"": "v"})}},
		{name: "long_causation_ID", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithCausationID(strings.Repeat("c", 10000))}},
		{name: "line_separators_and_emoji", data: []any{testkit.Noted{Text: "\u2028\u2029\U0001F680\ufeff<>&'\""}}},
		{name: "numbers_at_their_limits", data: []any{Measure{F: math.MaxFloat64, I: math.MinInt64, U: math.MaxUint64}, Measure{F: 0.1, I: math.MaxInt64, U: 1<<53 + 1}}},
		{name: "ID_of_a_deleted_event_in_another_stream", data: []any{testkit.Noted{}}, opts: []event.AppendOption{event.WithIDs(deletedID)},
			setup: func(t *testing.T, s *eventstore.Store) {
				testkit.MustAppend(t, s, "gone", event.NoStream, []any{testkit.Noted{}}, event.WithIDs(deletedID))
				if err := s.DeleteStream(t.Context(), "gone", event.Any); err != nil {
					t.Fatal(err)
				}
			}},
	}
	answers := map[testdb.Kind][]string{}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			db := testdb.New(t, kind)
			reg := testkit.NewRegistry()
			event.MustRegister[Measure](reg, "measure")
			s := testkit.MigratedStore(t, db.Gorm, reg, eventstore.Options{})
			for i, p := range probes {
				if p.setup != nil {
					p.setup(t, s)
				}
				a := answer(t, s, fmt.Sprintf("probe-%d", i), p.data, p.opts...)
				t.Logf("%s: %s", p.name, a)
				answers[kind] = append(answers[kind], a)
			}
		})
	}
	for i, p := range probes {
		if a, b := answers[kinds[0]][i], answers[kinds[1]][i]; a != b {
			t.Errorf("%s: %s says %q, %s says %q", p.name, kinds[0], a, kinds[1], b)
		}
	}
}

// answer appends data to a new stream and describes the outcome.
func answer(t *testing.T, s *eventstore.Store, stream string, data []any, opts ...event.AppendOption) string {
	t.Helper()
	got, err := s.Append(t.Context(), stream, event.NoStream, data, opts...)
	if err != nil {
		return "rejected: " + errClass(err)
	}
	read, err := testkit.Collect(s.ReadStream(t.Context(), stream, 0, 0))
	if err != nil {
		return "stored, read fails: " + errClass(err)
	}
	if len(read) != len(got) {
		return fmt.Sprintf("stored, read back %d of %d events", len(read), len(got))
	}
	for i := range got {
		if d := testkit.DiffEvent(read[i], got[i]); d != "" {
			return fmt.Sprintf("stored, event %d read back differs: %s", i, d)
		}
	}
	return "stored, read back equal"
}

func errClass(err error) string {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"ErrInvalidArgument", eventstore.ErrInvalidArgument},
		{"ErrUnknownType", event.ErrUnknownType},
		{"ErrVersionConflict", event.ErrVersionConflict},
		{"ErrDuplicateEventID", event.ErrDuplicateEventID},
		{"ErrStreamDeleted", event.ErrStreamDeleted},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other error: " + err.Error()
}
