package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// Outcomes of an append in the expected-version table.
const (
	appends         = "appends"
	versionConflict = "version_conflict"
	streamDeleted   = "stream_deleted"
	invalidArgument = "invalid_argument"
)

// testExpectedVersions checks every expected-version kind against a
// missing, an existing and a deleted stream.
func testExpectedVersions(t *testing.T, s *suite) {
	// existing and deleted streams hold two events before the append.
	type expectation struct {
		name     string
		expected func(current int64) event.ExpectedVersion
	}
	anyV := expectation{"Any", func(int64) event.ExpectedVersion { return event.Any }}
	noStream := expectation{"NoStream", func(int64) event.ExpectedVersion { return event.NoStream }}
	exists := expectation{"StreamExists", func(int64) event.ExpectedVersion { return event.StreamExists }}
	exactCur := expectation{"Exact(current)", func(c int64) event.ExpectedVersion { return event.Exact(c) }}
	exactBelow := expectation{"Exact(current-1)", func(c int64) event.ExpectedVersion { return event.Exact(c - 1) }}
	exactAbove := expectation{"Exact(current+1)", func(c int64) event.ExpectedVersion { return event.Exact(c + 1) }}
	exactZero := expectation{"Exact(0)", func(int64) event.ExpectedVersion { return event.Exact(0) }}

	tests := []struct {
		state string // missing, existing or deleted
		exp   expectation
		want  string
	}{
		{"missing", anyV, appends},
		{"missing", noStream, appends},
		{"missing", exists, versionConflict},
		{"missing", exactCur, appends},
		{"missing", exactBelow, invalidArgument},
		{"missing", exactAbove, versionConflict},
		{"missing", exactZero, appends},

		{"existing", anyV, appends},
		{"existing", noStream, versionConflict},
		{"existing", exists, appends},
		{"existing", exactCur, appends},
		{"existing", exactBelow, versionConflict},
		{"existing", exactAbove, versionConflict},
		{"existing", exactZero, versionConflict},

		{"deleted", anyV, streamDeleted},
		{"deleted", noStream, streamDeleted},
		{"deleted", exists, streamDeleted},
		{"deleted", exactCur, streamDeleted},
		{"deleted", exactBelow, streamDeleted},
		{"deleted", exactAbove, streamDeleted},
		{"deleted", exactZero, streamDeleted},
	}

	st := s.database(t).migrated(t)
	ctx := t.Context()
	for i, tt := range tests {
		name := fmt.Sprintf("%s_on_%s_stream_with_%s", tt.want, tt.state, tt.exp.name)
		t.Run(name, func(t *testing.T) {
			stream := fmt.Sprintf("%s-%d", tt.state, i)
			var current int64
			if tt.state != "missing" {
				testkit.MustAppend(t, st, stream, event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 1}})
				current = 2
			}
			if tt.state == "deleted" {
				if err := st.DeleteStream(ctx, stream, event.Any); err != nil {
					t.Fatalf("DeleteStream(%q) = %v, want nil", stream, err)
				}
			}
			before := testkit.Head(t, st)
			expected := tt.exp.expected(current)
			data := []any{testkit.Deposited{Amount: 10}, testkit.Noted{Text: "two"}}

			got, err := st.Append(ctx, stream, expected, data)

			switch tt.want {
			case appends:
				if err != nil {
					t.Fatalf("Append(%q, %v) = %v, want nil", stream, expected, err)
				}
				if len(got) != 2 {
					t.Fatalf("Append(%q, %v) returned %d events, want 2", stream, expected, len(got))
				}
				for j, e := range got {
					if e.StreamID != stream || e.Version != current+1+int64(j) {
						t.Errorf("Append(%q, %v): event %d at %s@%d, want %s@%d", stream, expected, j, e.StreamID, e.Version, stream, current+1+int64(j))
					}
					if e.Position <= before || (j > 0 && e.Position <= got[j-1].Position) {
						t.Errorf("Append(%q, %v): event %d at position %d (head was %d, previous %v), want increasing positions after the head",
							stream, expected, j, e.Position, before, testkit.Places(got[:j]))
					}
				}
				if v := testkit.StreamVersion(t, st, stream); v != current+2 {
					t.Errorf("StreamVersion(%q) = %d, want %d", stream, v, current+2)
				}
				stored := testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, stream, current+1, 0))
				testkit.CheckEvents(t, fmt.Sprintf("ReadStream(%q, %d)", stream, current+1), stored, got)
				return
			case versionConflict:
				testkit.CheckConflict(t, "Append", err, stream, expected, current)
			case streamDeleted:
				if !errors.Is(err, event.ErrStreamDeleted) {
					t.Errorf("Append(%q, %v) = %v, want ErrStreamDeleted", stream, expected, err)
				}
			case invalidArgument:
				if !errors.Is(err, eventstore.ErrInvalidArgument) {
					t.Errorf("Append(%q, %v) = %v, want ErrInvalidArgument", stream, expected, err)
				}
			}
			if len(got) != 0 {
				t.Errorf("Append(%q, %v) returned %d events with its error, want none", stream, expected, len(got))
			}
			if h := testkit.Head(t, st); h != before {
				t.Errorf("Head() = %d after a failed append, want %d", h, before)
			}
			if tt.state != "deleted" {
				if v := testkit.StreamVersion(t, st, stream); v != current {
					t.Errorf("StreamVersion(%q) = %d after a failed append, want %d", stream, v, current)
				}
			}
		})
	}
}

// testBadInput checks that bad input to an append, or to any other call,
// is an error and writes nothing.
func testBadInput(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	first := testkit.MustAppend(t, st, "s", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
	snap := event.Snapshot{StreamID: "s", Version: 1, SchemaVersion: 1, Data: []byte(`{"v":1}`)}
	if err := st.SaveSnapshot(t.Context(), snap); err != nil {
		t.Fatalf("SaveSnapshot(s) = %v, want nil", err)
	}
	// unchanged checks that the store holds what it held before.
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		if all := testkit.MustCollect(t, "ReadAll", st.ReadAll(t.Context(), 0, 0)); len(all) != 1 || all[0].ID != first[0].ID {
			t.Errorf("ReadAll() = %s after %s, want only the first event", testkit.Places(all), what)
		}
		if v, err := st.StreamVersion(t.Context(), "s"); err != nil || v != 1 {
			t.Errorf("StreamVersion(s) = %d, %v after %s, want 1, nil", v, err, what)
		}
		if got, ok, err := st.LoadSnapshot(t.Context(), "s"); err != nil || !ok || got.Version != 1 || string(got.Data) != string(snap.Data) {
			t.Errorf("LoadSnapshot(s) = v%d %q, %v, %v after %s, want the first snapshot", got.Version, got.Data, ok, err, what)
		}
	}

	t.Run("appends_with_bad_input_are_rejected", func(t *testing.T) {
		type unregistered struct{ X int }
		dupID := uuid.New()
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		tests := []struct {
			name     string
			ctx      context.Context // nil: the test's context
			stream   string
			expected event.ExpectedVersion
			data     []any
			opts     []event.AppendOption
			want     error
		}{
			{name: "empty_stream_ID", stream: "", data: []any{testkit.Noted{}}, want: eventstore.ErrInvalidArgument},
			{name: "stream_ID_of_256_bytes", stream: strings.Repeat("a", 256), data: []any{testkit.Noted{}}, want: eventstore.ErrInvalidArgument},
			{name: "stream_ID_of_128_two_byte_runes", stream: strings.Repeat("é", 128), data: []any{testkit.Noted{}}, want: eventstore.ErrInvalidArgument},
			{name: "stream_ID_not_UTF-8", stream: "s-\xff", data: []any{testkit.Noted{}}, want: eventstore.ErrInvalidArgument},
			{name: "stream_ID_with_NUL", stream: "s\x00t", data: []any{testkit.Noted{}}, want: eventstore.ErrInvalidArgument},
			{name: "nil_events", stream: "s", data: nil, want: eventstore.ErrInvalidArgument},
			{name: "empty_events", stream: "s", data: []any{}, want: eventstore.ErrInvalidArgument},
			{name: "nil_data", stream: "s", data: []any{nil}, want: eventstore.ErrInvalidArgument},
			{name: "nil_data_after_valid_data", stream: "s", data: []any{testkit.Noted{}, nil}, want: eventstore.ErrInvalidArgument},
			{name: "nil_pointer_data", stream: "s", data: []any{(*testkit.Noted)(nil)}, want: eventstore.ErrInvalidArgument},
			{name: "negative_exact_version", stream: "s", expected: event.Exact(-1), data: []any{testkit.Noted{}}, want: eventstore.ErrInvalidArgument},
			{name: "NUL_in_causation_ID", stream: "s", data: []any{testkit.Noted{}},
				opts: []event.AppendOption{event.WithCausationID("a\x00b")}, want: eventstore.ErrInvalidArgument},
			{name: "correlation_ID_not_UTF-8", stream: "s", data: []any{testkit.Noted{}},
				opts: []event.AppendOption{event.WithCorrelationID("a\xffb")}, want: eventstore.ErrInvalidArgument},
			{name: "fewer_IDs_than_events", stream: "s", data: []any{testkit.Noted{}, testkit.Noted{}},
				opts: []event.AppendOption{event.WithIDs(uuid.New())}, want: eventstore.ErrInvalidArgument},
			{name: "more_IDs_than_events", stream: "s", data: []any{testkit.Noted{}},
				opts: []event.AppendOption{event.WithIDs(uuid.New(), uuid.New())}, want: eventstore.ErrInvalidArgument},
			{name: "empty_IDs_for_events", stream: "s", data: []any{testkit.Noted{}},
				opts: []event.AppendOption{event.WithIDs()}, want: eventstore.ErrInvalidArgument},
			{name: "nil_ID", stream: "s", data: []any{testkit.Noted{}, testkit.Noted{}},
				opts: []event.AppendOption{event.WithIDs(uuid.New(), uuid.Nil)}, want: eventstore.ErrInvalidArgument},
			{name: "duplicate_IDs_in_one_append", stream: "s", data: []any{testkit.Noted{}, testkit.Noted{}},
				opts: []event.AppendOption{event.WithIDs(dupID, dupID)}, want: eventstore.ErrInvalidArgument},
			{name: "unregistered_type", stream: "s", data: []any{unregistered{1}}, want: event.ErrUnknownType},
			{name: "unregistered_type_after_valid_data", stream: "s", data: []any{testkit.Noted{}, unregistered{2}}, want: event.ErrUnknownType},
			{name: "unregistered_type_in_new_stream", stream: "new", expected: event.NoStream, data: []any{unregistered{3}}, want: event.ErrUnknownType},
			{name: "cancelled_context", ctx: cancelled, stream: "s", data: []any{testkit.Noted{}}, want: context.Canceled},
			{name: "cancelled_context_new_stream", ctx: cancelled, stream: "new", expected: event.NoStream, data: []any{testkit.Noted{}}, want: context.Canceled},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := tt.ctx
				if ctx == nil {
					ctx = t.Context()
				}
				got, err := st.Append(ctx, tt.stream, tt.expected, tt.data, tt.opts...)
				if !errors.Is(err, tt.want) {
					t.Errorf("Append(%q, %v, %d events) = %v, want %v", tt.stream, tt.expected, len(tt.data), err, tt.want)
				}
				if len(got) != 0 {
					t.Errorf("Append(%q) returned %d events with its error, want none", tt.stream, len(got))
				}
				unchanged(t, "a rejected append")
				if v := testkit.StreamVersion(t, st, "new"); v != 0 {
					t.Errorf("StreamVersion(new) = %d after a rejected append, want 0", v)
				}
			})
		}
	})

	t.Run("other_calls_with_bad_input_are_rejected", func(t *testing.T) {
		long := strings.Repeat("x", eventstore.MaxStreamIDLength+1)
		// first reports the first error a sequence yields.
		first := func(seq func(func(event.Event, error) bool)) error {
			for _, err := range seq {
				if err != nil {
					return err
				}
			}
			return nil
		}
		firstBatch := func(seq func(func(event.Batch, error) bool)) error {
			for _, err := range seq {
				if err != nil {
					return err
				}
			}
			return nil
		}
		tests := []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"ReadEvent_of_version_-1", func(ctx context.Context) error { _, err := st.ReadEvent(ctx, "s", -1); return err }},
			{"ReadEvent_of_empty_stream_ID", func(ctx context.Context) error { _, err := st.ReadEvent(ctx, "", 1); return err }},
			{"ReadStream_from_-1", func(ctx context.Context) error { return first(st.ReadStream(ctx, "s", -1, 0)) }},
			{"ReadStream_with_limit_-1", func(ctx context.Context) error { return first(st.ReadStream(ctx, "s", 0, -1)) }},
			{"ReadStream_of_stream_ID_with_NUL", func(ctx context.Context) error { return first(st.ReadStream(ctx, "s\x00", 0, 0)) }},
			{"ReadStreamBackward_of_over-long_stream_ID", func(ctx context.Context) error { return first(st.ReadStreamBackward(ctx, long, 0, 0)) }},
			{"ReadAll_after_-1", func(ctx context.Context) error { return first(st.ReadAll(ctx, -1, 0)) }},
			{"ReadAll_with_limit_-1", func(ctx context.Context) error { return first(st.ReadAll(ctx, 0, -1)) }},
			{"ReadAll_of_type_name_with_NUL", func(ctx context.Context) error { return first(st.ReadAll(ctx, 0, 0, "a\x00")) }},
			{"StreamVersion_of_empty_stream_ID", func(ctx context.Context) error { _, err := st.StreamVersion(ctx, ""); return err }},
			{"DeleteStream_with_Exact(-1)", func(ctx context.Context) error { return st.DeleteStream(ctx, "s", event.Exact(-1)) }},
			{"DeleteStream_of_empty_stream_ID", func(ctx context.Context) error { return st.DeleteStream(ctx, "", event.Any) }},
			{"SaveSnapshot_at_version_0", func(ctx context.Context) error {
				return st.SaveSnapshot(ctx, event.Snapshot{StreamID: "s", Version: 0, SchemaVersion: 1, Data: []byte("{}")})
			}},
			{"SaveSnapshot_with_nil_data", func(ctx context.Context) error {
				return st.SaveSnapshot(ctx, event.Snapshot{StreamID: "s", Version: 2, SchemaVersion: 1})
			}},
			{"SaveSnapshot_of_empty_stream_ID", func(ctx context.Context) error {
				return st.SaveSnapshot(ctx, event.Snapshot{Version: 2, SchemaVersion: 1, Data: []byte("{}")})
			}},
			{"LoadSnapshot_of_over-long_stream_ID", func(ctx context.Context) error { _, _, err := st.LoadSnapshot(ctx, long); return err }},
			{"ReadBatch_after_-1", func(ctx context.Context) error { _, err := st.ReadBatch(ctx, -1, 10); return err }},
			{"ReadBatch_with_limit_0", func(ctx context.Context) error { _, err := st.ReadBatch(ctx, 0, 0); return err }},
			{"ReadBatch_with_limit_-5", func(ctx context.Context) error { _, err := st.ReadBatch(ctx, 0, -5); return err }},
			{"Subscribe_after_-1", func(ctx context.Context) error { return first(st.Subscribe(ctx, -1)) }},
			{"SubscribeBatches_with_limit_0", func(ctx context.Context) error { return firstBatch(st.SubscribeBatches(ctx, 0, 0)) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if err := tt.call(ctx); !errors.Is(err, eventstore.ErrInvalidArgument) {
					t.Errorf("%s = %v, want ErrInvalidArgument", tt.name, err)
				}
				unchanged(t, tt.name)
			})
		}
	})
}

// testStreamIDs checks that stream IDs are stored and matched byte for
// byte: no collation, case folding, trimming or pattern matching.
func testStreamIDs(t *testing.T, s *suite) {
	ids := []string{
		strings.Repeat("a", 255),
		strings.Repeat("é", 127) + "a",
		"ström/☃-🚀 with spaces",
		"'quoted'; DROP TABLE x; --",
		"%_\\",
		"Case", "case", "CASE",
		"trail", "trail ", " trail",
		"\u00e9", "e\u0301",
	}
	st := s.database(t).migrated(t)
	for _, id := range ids {
		got := testkit.MustAppend(t, st, id, event.NoStream, []any{testkit.Noted{Text: id}})
		read := testkit.MustCollect(t, "ReadStream", st.ReadStream(t.Context(), id, 0, 0))
		testkit.CheckEvents(t, fmt.Sprintf("ReadStream(%q)", id), read, got)
		if v := testkit.StreamVersion(t, st, id); v != 1 {
			t.Errorf("StreamVersion(%q) = %d, want 1", id, v)
		}
	}
	// LIKE wildcards in a stream ID must not match other streams.
	if v := testkit.StreamVersion(t, st, "%"); v != 0 {
		t.Errorf("StreamVersion(%q) = %d, want 0", "%", v)
	}
}

// testRoundTrip checks that what Append returns is what reads return,
// for data and metadata the database may treat specially.
func testRoundTrip(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	ctx := t.Context()

	t.Run("a_MiB_of_data_reads_back_whole", func(t *testing.T) {
		big := make([]byte, 1<<20)
		for i := range big {
			big[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i*7%36]
		}
		got := testkit.MustAppend(t, st, "big", event.NoStream, []any{testkit.Noted{Text: string(big)}, testkit.Deposited{Amount: 1}})
		if n := got[0].Data.(testkit.Noted); n.Text != string(big) {
			t.Fatalf("Append returned data of %d bytes, want the 1 MiB written", len(n.Text))
		}
		e, err := st.ReadEvent(ctx, "big", 1)
		if err != nil {
			t.Fatalf("ReadEvent(big, 1) = %v", err)
		}
		testkit.CheckEvents(t, "ReadEvent(big, 1)", []event.Event{e}, got[:1])
		testkit.CheckEvents(t, "ReadStream(big)", testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "big", 0, 0)), got)
		testkit.CheckEvents(t, "ReadAll(after big)", testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, got[0].Position-1, 2)), got)
	})

	// PostgreSQL's text and jsonb cannot hold NUL and SQLite can: both
	// must give the same answer, and that answer is a round trip.
	t.Run("NUL_in_data_and_metadata_reads_back", func(t *testing.T) {
		text := "before\u0000after\x00"
		meta := map[string]string{"plain": "v", "nul": "a\u0000b", "k\u0000ey": "x"}
		got, err := st.Append(ctx, "nul", event.NoStream, []any{testkit.Noted{Text: text}}, event.WithMetadata(meta))
		if err != nil {
			t.Fatalf("Append(data and metadata with NUL) = %v, want nil", err)
		}
		if n, ok := got[0].Data.(testkit.Noted); !ok || n.Text != text {
			t.Errorf("Append returned data %q, want %q", got[0].Data, testkit.Noted{Text: text})
		}
		if !maps.Equal(got[0].Metadata, meta) {
			t.Errorf("Append returned metadata %q, want %q", got[0].Metadata, meta)
		}
		read, err := st.ReadEvent(ctx, "nul", 1)
		if err != nil {
			t.Fatalf("ReadEvent(nul, 1) = %v", err)
		}
		testkit.CheckEvents(t, "ReadEvent(nul, 1)", []event.Event{read}, got)
		testkit.CheckEvents(t, "ReadStream(nul)", testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "nul", 0, 0)), got)
	})

	// Event data holding a string that is not valid UTF-8 (which the JSON
	// codec would replace with U+FFFD) is refused, and the whole append
	// with it, or stored as given: what Append returns is what a reader
	// gets, byte for byte.
	t.Run("invalid_UTF-8_data_is_refused_or_kept", func(t *testing.T) {
		for i, text := range []string{"a\xffb", "\xc3", "ok\xed\xa0\x80"} {
			stream := fmt.Sprintf("data-%d", i)
			got, err := st.Append(ctx, stream, event.NoStream, []any{testkit.Noted{Text: "valid"}, testkit.Noted{Text: text}})
			if errors.Is(err, eventstore.ErrInvalidArgument) {
				if got != nil {
					t.Errorf("Append(data %q) returned events %v with its error", text, got)
				}
				if v := testkit.StreamVersion(t, st, stream); v != 0 {
					t.Errorf("StreamVersion(%q) = %d after a refused append, want 0", stream, v)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Append(data %q) = %v, want nil or ErrInvalidArgument", text, err)
			}
			if n, ok := got[1].Data.(testkit.Noted); !ok || n.Text != text {
				t.Errorf("Append(data %q) returned data %q, want the bytes appended", text, got[1].Data)
			}
			read, err := st.ReadEvent(ctx, stream, 2)
			if err != nil {
				t.Fatalf("ReadEvent(%q, 2) = %v", stream, err)
			}
			testkit.CheckEvents(t, fmt.Sprintf("ReadEvent(%q, 2)", stream), []event.Event{read}, got[1:])
			testkit.CheckEvents(t, fmt.Sprintf("ReadStream(%q)", stream), testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, stream, 0, 0)), got)
		}
	})

	// Metadata that is not valid UTF-8 is refused like a stream ID that is
	// not, or stored as given: what Append returns is what a reader gets.
	t.Run("invalid_UTF-8_metadata_is_refused_or_kept", func(t *testing.T) {
		for i, meta := range []map[string]string{{"k": "a\xffb"}, {"k\xfe": "v"}} {
			stream := fmt.Sprintf("meta-%d", i)
			got, err := st.Append(ctx, stream, event.NoStream, []any{testkit.Noted{}}, event.WithMetadata(meta))
			if errors.Is(err, eventstore.ErrInvalidArgument) {
				if v := testkit.StreamVersion(t, st, stream); v != 0 {
					t.Errorf("StreamVersion(%q) = %d after a refused append, want 0", stream, v)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Append(metadata %q) = %v, want nil or ErrInvalidArgument", meta, err)
			}
			read, err := st.ReadEvent(ctx, stream, 1)
			if err != nil {
				t.Fatalf("ReadEvent(%q, 1) = %v", stream, err)
			}
			testkit.CheckEvents(t, fmt.Sprintf("ReadEvent(%q, 1)", stream), []event.Event{read}, got)
		}
	})
}

// testIdempotent checks appends with caller-given event IDs: the same IDs
// at the same place are a no-op that returns the stored events, anywhere
// else an error that writes nothing.
func testIdempotent(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	ctx := t.Context()
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	first := testkit.MustAppend(t, st, "idem", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}},
		event.WithIDs(a, b), event.WithCorrelationID("corr-1"))
	if first[0].ID != a || first[1].ID != b {
		t.Fatalf("Append with IDs %v, %v recorded IDs %v, %v", a, b, first[0].ID, first[1].ID)
	}

	t.Run("same_IDs_same_place_return_the_stored_events", func(t *testing.T) {
		h := testkit.Head(t, st)
		got, err := st.Append(ctx, "idem", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}},
			event.WithIDs(a, b), event.WithCorrelationID("corr-1"))
		if err != nil {
			t.Fatalf("Append(retry with the same IDs) = %v, want nil", err)
		}
		testkit.CheckEvents(t, "Append(retry)", got, first)
		if hh := testkit.Head(t, st); hh != h {
			t.Errorf("Head() = %d after an idempotent retry, want %d", hh, h)
		}
		if v := testkit.StreamVersion(t, st, "idem"); v != 2 {
			t.Errorf("StreamVersion = %d after an idempotent retry, want 2", v)
		}
	})

	third := testkit.MustAppend(t, st, "idem", event.Exact(2), []any{testkit.Noted{Text: "c"}}, event.WithIDs(c))
	testkit.MustAppend(t, st, "idem", event.Exact(3), []any{testkit.Noted{Text: "d"}}, event.WithIDs(d))

	t.Run("retry_at_an_exact_version_after_later_appends_returns_the_stored_event", func(t *testing.T) {
		got, err := st.Append(ctx, "idem", event.Exact(2), []any{testkit.Noted{Text: "c"}}, event.WithIDs(c))
		if err != nil {
			t.Fatalf("Append(retry at Exact(2)) = %v, want nil", err)
		}
		testkit.CheckEvents(t, "Append(retry at Exact(2))", got, third)
		if v := testkit.StreamVersion(t, st, "idem"); v != 4 {
			t.Errorf("StreamVersion = %d, want 4", v)
		}
	})

	t.Run("retry_with_Any_writes_nothing", func(t *testing.T) {
		// Where an Any append "would put" the events is not defined once
		// the stream has moved on: a no-op success or a duplicate error
		// are both acceptable, a write is not.
		h := testkit.Head(t, st)
		got, err := st.Append(ctx, "idem", event.Any, []any{testkit.Noted{Text: "d"}}, event.WithIDs(d))
		switch {
		case err == nil:
			if len(got) != 1 || got[0].ID != d || got[0].Version != 4 {
				t.Errorf("Append(retry with Any) = %s, want the stored event idem@4", testkit.Places(got))
			}
		case errors.Is(err, event.ErrDuplicateEventID):
		default:
			t.Errorf("Append(retry with Any) = %v, want nil or ErrDuplicateEventID", err)
		}
		if hh := testkit.Head(t, st); hh != h {
			t.Errorf("Head() = %d after a retry, want %d", hh, h)
		}
	})

	fails := []struct {
		name     string
		stream   string
		expected event.ExpectedVersion
		data     []any
		ids      []uuid.UUID
	}{
		{"same_ID_in_another_stream", "other", event.NoStream, []any{testkit.Noted{}}, []uuid.UUID{a}},
		{"same_ID_in_another_stream_with_Any", "other", event.Any, []any{testkit.Noted{}}, []uuid.UUID{c}},
		{"same_ID_at_another_version", "idem", event.Exact(4), []any{testkit.Noted{}}, []uuid.UUID{b}},
		{"new_ID_then_stored_ID", "idem", event.Exact(4), []any{testkit.Noted{}, testkit.Noted{}}, []uuid.UUID{uuid.New(), a}},
		{"stored_IDs_in_another_order", "other2", event.NoStream, []any{testkit.Noted{}, testkit.Noted{}}, []uuid.UUID{b, a}},
	}
	for _, tt := range fails {
		t.Run("duplicate_ID_error_for_"+tt.name, func(t *testing.T) {
			h := testkit.Head(t, st)
			got, err := st.Append(ctx, tt.stream, tt.expected, tt.data, event.WithIDs(tt.ids...))
			if !errors.Is(err, event.ErrDuplicateEventID) {
				t.Errorf("Append(%q, %v, IDs %v) = %s, %v; want ErrDuplicateEventID", tt.stream, tt.expected, tt.ids, testkit.Places(got), err)
			}
			if hh := testkit.Head(t, st); hh != h {
				t.Errorf("Head() = %d after a duplicate-ID append, want %d", hh, h)
			}
		})
	}
	all := testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, 0, 0))
	if len(all) != 4 {
		t.Errorf("ReadAll() = %s, want the 4 events of stream idem", testkit.Places(all))
	}
	for _, stream := range []string{"other", "other2"} {
		if v := testkit.StreamVersion(t, st, stream); v != 0 {
			t.Errorf("StreamVersion(%q) = %d, want 0", stream, v)
		}
	}

	t.Run("concurrent_retries_all_return_the_events_written_once", func(t *testing.T) {
		testConcurrentRetries(t, s)
	})
	t.Run("one_of_concurrent_appends_of_a_new_ID_wins", func(t *testing.T) {
		testConcurrentDuplicateIDs(t, s)
	})
}

// testConcurrentRetries: concurrent retries of one append (the same IDs,
// the same place) all succeed with the same recorded events, and write
// them once. A large append goes first in each round so that the retries
// queue up behind it and share a group-commit batch.
func testConcurrentRetries(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	const n = 8
	big := make([]any, 2000)
	for i := range big {
		big[i] = testkit.Tick{Seq: i}
	}
	for round := range 4 {
		stream := fmt.Sprintf("retry-%d", round)
		ids := []uuid.UUID{uuid.New(), uuid.New()}
		data := []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 1}}
		results := make([][]event.Event, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			if _, err := st.Append(t.Context(), fmt.Sprintf("blocker-%d", round), event.NoStream, big); err != nil {
				t.Errorf("Append(blocker) = %v", err)
			}
		})
		for i := range n {
			wg.Go(func() {
				<-start
				time.Sleep(time.Duration(round*(i+1)) * 200 * time.Microsecond)
				results[i], errs[i] = st.Append(t.Context(), stream, event.NoStream, data, event.WithIDs(ids...))
			})
		}
		close(start)
		wg.Wait()
		stored := testkit.MustCollect(t, "ReadStream", st.ReadStream(t.Context(), stream, 0, 0))
		if len(stored) != 2 {
			t.Fatalf("ReadStream(%q) = %s, want 2 events", stream, testkit.Places(stored))
		}
		for i := range n {
			if errs[i] != nil {
				t.Errorf("round %d: Append %d of %d concurrent identical appends = %v, want nil", round, i, n, errs[i])
				continue
			}
			testkit.CheckEvents(t, fmt.Sprintf("round %d: Append %d", round, i), results[i], stored)
		}
	}
}

// testConcurrentDuplicateIDs: concurrent appends of one new ID to
// different streams: one wins, the others fail with ErrDuplicateEventID
// and write nothing.
func testConcurrentDuplicateIDs(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	const n = 8
	for round := range 5 {
		id := uuid.New()
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = st.Append(t.Context(), fmt.Sprintf("dup-%d-%d", round, i), event.NoStream,
					[]any{testkit.Noted{Text: "x"}}, event.WithIDs(id))
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			stream := fmt.Sprintf("dup-%d-%d", round, i)
			switch {
			case err == nil:
				wins++
				if v := testkit.StreamVersion(t, st, stream); v != 1 {
					t.Errorf("StreamVersion(%q) = %d after its append succeeded, want 1", stream, v)
				}
			case errors.Is(err, event.ErrDuplicateEventID):
				if v := testkit.StreamVersion(t, st, stream); v != 0 {
					t.Errorf("StreamVersion(%q) = %d after its append failed, want 0", stream, v)
				}
			default:
				t.Errorf("Append(%q, ID %v) = %v, want nil or ErrDuplicateEventID", stream, id, err)
			}
		}
		if wins != 1 {
			t.Errorf("round %d: %d of %d concurrent appends of ID %v succeeded, want exactly 1", round, wins, n, id)
		}
	}
}
