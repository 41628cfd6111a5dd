package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// outcomes of an append in the table tests.
const (
	appended        = "appends"
	versionConflict = "version_conflict"
	streamDeleted   = "stream_deleted"
	invalidArgument = "invalid_argument"
)

func TestAppendExpectedVersion(t *testing.T) {
	t.Parallel()
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
		{"missing", anyV, appended},
		{"missing", noStream, appended},
		{"missing", exists, versionConflict},
		{"missing", exactCur, appended},
		{"missing", exactBelow, invalidArgument},
		{"missing", exactAbove, versionConflict},
		{"missing", exactZero, appended},

		{"existing", anyV, appended},
		{"existing", noStream, versionConflict},
		{"existing", exists, appended},
		{"existing", exactCur, appended},
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

	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		for i, tt := range tests {
			name := fmt.Sprintf("%s_on_%s_stream_with_%s", tt.want, tt.state, tt.exp.name)
			t.Run(name, func(t *testing.T) {
				stream := fmt.Sprintf("%s-%d", tt.state, i)
				var current int64
				if tt.state != "missing" {
					mustAppend(t, s, stream, event.NoStream, []any{Opened{Owner: "ann"}, Deposited{Amount: 1}})
					current = 2
				}
				if tt.state == "deleted" {
					if err := s.DeleteStream(ctx, stream, event.Any); err != nil {
						t.Fatalf("DeleteStream(%q) = %v, want nil", stream, err)
					}
				}
				before := head(t, s)
				expected := tt.exp.expected(current)
				data := []any{Deposited{Amount: 10}, Note{Text: "two"}}

				got, err := s.Append(ctx, stream, expected, data)

				switch tt.want {
				case appended:
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
								stream, expected, j, e.Position, before, places(got[:j]))
						}
					}
					if v := streamVersion(t, s, stream); v != current+2 {
						t.Errorf("StreamVersion(%q) = %d, want %d", stream, v, current+2)
					}
					stored := mustCollect(t, "ReadStream", s.ReadStream(ctx, stream, current+1, 0))
					checkEvents(t, fmt.Sprintf("ReadStream(%q, %d)", stream, current+1), stored, got)
					return
				case versionConflict:
					checkConflict(t, err, stream, expected, current)
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
				if h := head(t, s); h != before {
					t.Errorf("Head() = %d after a failed append, want %d", h, before)
				}
				if tt.state != "deleted" {
					if v := streamVersion(t, s, stream); v != current {
						t.Errorf("StreamVersion(%q) = %d after a failed append, want %d", stream, v, current)
					}
				}
			})
		}
	})
}

func TestAppendInvalidInput(t *testing.T) {
	t.Parallel()
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
		{name: "empty_stream_ID", stream: "", data: []any{Note{}}, want: eventstore.ErrInvalidArgument},
		{name: "stream_ID_of_256_bytes", stream: strings.Repeat("a", 256), data: []any{Note{}}, want: eventstore.ErrInvalidArgument},
		{name: "stream_ID_of_128_two_byte_runes", stream: strings.Repeat("é", 128), data: []any{Note{}}, want: eventstore.ErrInvalidArgument},
		{name: "stream_ID_not_UTF-8", stream: "s-\xff", data: []any{Note{}}, want: eventstore.ErrInvalidArgument},
		{name: "stream_ID_with_NUL", stream: "s\x00t", data: []any{Note{}}, want: eventstore.ErrInvalidArgument},
		{name: "nil_events", stream: "s", data: nil, want: eventstore.ErrInvalidArgument},
		{name: "empty_events", stream: "s", data: []any{}, want: eventstore.ErrInvalidArgument},
		{name: "nil_data", stream: "s", data: []any{nil}, want: eventstore.ErrInvalidArgument},
		{name: "nil_data_after_valid_data", stream: "s", data: []any{Note{}, nil}, want: eventstore.ErrInvalidArgument},
		{name: "nil_pointer_data", stream: "s", data: []any{(*Note)(nil)}, want: eventstore.ErrInvalidArgument},
		{name: "negative_exact_version", stream: "s", expected: event.Exact(-1), data: []any{Note{}}, want: eventstore.ErrInvalidArgument},
		{name: "fewer_IDs_than_events", stream: "s", data: []any{Note{}, Note{}},
			opts: []event.AppendOption{event.WithIDs(uuid.New())}, want: eventstore.ErrInvalidArgument},
		{name: "more_IDs_than_events", stream: "s", data: []any{Note{}},
			opts: []event.AppendOption{event.WithIDs(uuid.New(), uuid.New())}, want: eventstore.ErrInvalidArgument},
		{name: "empty_IDs_for_events", stream: "s", data: []any{Note{}},
			opts: []event.AppendOption{event.WithIDs()}, want: eventstore.ErrInvalidArgument},
		{name: "nil_ID", stream: "s", data: []any{Note{}, Note{}},
			opts: []event.AppendOption{event.WithIDs(uuid.New(), uuid.Nil)}, want: eventstore.ErrInvalidArgument},
		{name: "duplicate_IDs_in_one_append", stream: "s", data: []any{Note{}, Note{}},
			opts: []event.AppendOption{event.WithIDs(dupID, dupID)}, want: eventstore.ErrInvalidArgument},
		{name: "unregistered_type", stream: "s", data: []any{unregistered{1}}, want: event.ErrUnknownType},
		{name: "unregistered_type_after_valid_data", stream: "s", data: []any{Note{}, unregistered{2}}, want: event.ErrUnknownType},
		{name: "unregistered_type_in_new_stream", stream: "new", expected: event.NoStream, data: []any{unregistered{3}}, want: event.ErrUnknownType},
		{name: "cancelled_context", ctx: cancelled, stream: "s", data: []any{Note{}}, want: context.Canceled},
		{name: "cancelled_context_new_stream", ctx: cancelled, stream: "new", expected: event.NoStream, data: []any{Note{}}, want: context.Canceled},
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		mustAppend(t, s, "s", event.NoStream, []any{Opened{Owner: "ann"}})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := tt.ctx
				if ctx == nil {
					ctx = t.Context()
				}
				before := head(t, s)
				got, err := s.Append(ctx, tt.stream, tt.expected, tt.data, tt.opts...)
				if !errors.Is(err, tt.want) {
					t.Errorf("Append(%q, %v, %d events) = %v, want %v", tt.stream, tt.expected, len(tt.data), err, tt.want)
				}
				if len(got) != 0 {
					t.Errorf("Append(%q) returned %d events with its error, want none", tt.stream, len(got))
				}
				if h := head(t, s); h != before {
					t.Errorf("Head() = %d after a rejected append, want %d", h, before)
				}
				all := mustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0))
				if len(all) != 1 {
					t.Errorf("ReadAll() = %s after a rejected append, want only the first event", places(all))
				}
			})
		}
	})
}

func TestAppendAcceptsEdgeStreamIDs(t *testing.T) {
	t.Parallel()
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
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		for _, id := range ids {
			got := mustAppend(t, s, id, event.NoStream, []any{Note{Text: id}})
			read := mustCollect(t, "ReadStream", s.ReadStream(t.Context(), id, 0, 0))
			checkEvents(t, fmt.Sprintf("ReadStream(%q)", id), read, got)
			if v := streamVersion(t, s, id); v != 1 {
				t.Errorf("StreamVersion(%q) = %d, want 1", id, v)
			}
		}
		// LIKE wildcards in a stream ID must not match other streams.
		if v := streamVersion(t, s, "%"); v != 0 {
			t.Errorf("StreamVersion(%q) = %d, want 0", "%", v)
		}
	})
}

func TestAppendIdempotent(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		first := mustAppend(t, s, "idem", event.NoStream, []any{Opened{Owner: "ann"}, Deposited{Amount: 5}},
			event.WithIDs(a, b), event.WithCorrelationID("corr-1"))
		if first[0].ID != a || first[1].ID != b {
			t.Fatalf("Append with IDs %v, %v recorded IDs %v, %v", a, b, first[0].ID, first[1].ID)
		}

		t.Run("same_IDs_same_place_return_stored_events", func(t *testing.T) {
			h := head(t, s)
			got, err := s.Append(ctx, "idem", event.NoStream, []any{Opened{Owner: "ann"}, Deposited{Amount: 5}},
				event.WithIDs(a, b), event.WithCorrelationID("corr-1"))
			if err != nil {
				t.Fatalf("Append(retry with the same IDs) = %v, want nil", err)
			}
			checkEvents(t, "Append(retry)", got, first)
			if hh := head(t, s); hh != h {
				t.Errorf("Head() = %d after an idempotent retry, want %d", hh, h)
			}
			if v := streamVersion(t, s, "idem"); v != 2 {
				t.Errorf("StreamVersion = %d after an idempotent retry, want 2", v)
			}
		})

		third := mustAppend(t, s, "idem", event.Exact(2), []any{Note{Text: "c"}}, event.WithIDs(c))
		mustAppend(t, s, "idem", event.Exact(3), []any{Note{Text: "d"}}, event.WithIDs(d))

		t.Run("retry_with_exact_version_after_later_appends", func(t *testing.T) {
			got, err := s.Append(ctx, "idem", event.Exact(2), []any{Note{Text: "c"}}, event.WithIDs(c))
			if err != nil {
				t.Fatalf("Append(retry at Exact(2)) = %v, want nil", err)
			}
			checkEvents(t, "Append(retry at Exact(2))", got, third)
			if v := streamVersion(t, s, "idem"); v != 4 {
				t.Errorf("StreamVersion = %d, want 4", v)
			}
		})

		t.Run("retry_with_any", func(t *testing.T) {
			// Where an Any append "would put" the events is not defined
			// once the stream has moved on: a no-op success or a
			// duplicate error are both acceptable, a write is not.
			h := head(t, s)
			got, err := s.Append(ctx, "idem", event.Any, []any{Note{Text: "d"}}, event.WithIDs(d))
			switch {
			case err == nil:
				if len(got) != 1 || got[0].ID != d || got[0].Version != 4 {
					t.Errorf("Append(retry with Any) = %s, want the stored event idem@4", places(got))
				}
			case errors.Is(err, event.ErrDuplicateEventID):
			default:
				t.Errorf("Append(retry with Any) = %v, want nil or ErrDuplicateEventID", err)
			}
			if hh := head(t, s); hh != h {
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
			{"same_ID_in_another_stream", "other", event.NoStream, []any{Note{}}, []uuid.UUID{a}},
			{"same_ID_in_another_stream_with_any", "other", event.Any, []any{Note{}}, []uuid.UUID{c}},
			{"same_ID_at_another_version", "idem", event.Exact(4), []any{Note{}}, []uuid.UUID{b}},
			{"new_ID_then_stored_ID", "idem", event.Exact(4), []any{Note{}, Note{}}, []uuid.UUID{uuid.New(), a}},
			{"stored_IDs_in_another_order", "other2", event.NoStream, []any{Note{}, Note{}}, []uuid.UUID{b, a}},
		}
		for _, tt := range fails {
			t.Run("duplicate_ID_error_for_"+tt.name, func(t *testing.T) {
				h := head(t, s)
				got, err := s.Append(ctx, tt.stream, tt.expected, tt.data, event.WithIDs(tt.ids...))
				if !errors.Is(err, event.ErrDuplicateEventID) {
					t.Errorf("Append(%q, %v, IDs %v) = %s, %v; want ErrDuplicateEventID", tt.stream, tt.expected, tt.ids, places(got), err)
				}
				if hh := head(t, s); hh != h {
					t.Errorf("Head() = %d after a duplicate-ID append, want %d", hh, h)
				}
			})
		}
		all := mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		if len(all) != 4 {
			t.Errorf("ReadAll() = %s, want the 4 events of stream idem", places(all))
		}
		for _, st := range []string{"other", "other2"} {
			if v := streamVersion(t, s, st); v != 0 {
				t.Errorf("StreamVersion(%q) = %d, want 0", st, v)
			}
		}
	})
}

// Concurrent retries of one append (the same IDs, the same place) all
// succeed with the same recorded events, and write them once. A large
// append goes first in each round so that the retries queue up behind it
// and share a group-commit batch.
func TestAppendIdempotentConcurrentRetries(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		const n = 8
		big := make([]any, 2000)
		for i := range big {
			big[i] = Tick{Seq: i}
		}
		for round := range 4 {
			stream := fmt.Sprintf("retry-%d", round)
			ids := []uuid.UUID{uuid.New(), uuid.New()}
			data := []any{Opened{Owner: "ann"}, Deposited{Amount: 1}}
			results := make([][]event.Event, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				if _, err := s.Append(t.Context(), fmt.Sprintf("blocker-%d", round), event.NoStream, big); err != nil {
					t.Errorf("Append(blocker) = %v", err)
				}
			})
			for i := range n {
				wg.Go(func() {
					<-start
					time.Sleep(time.Duration(round*(i+1)) * 200 * time.Microsecond)
					results[i], errs[i] = s.Append(t.Context(), stream, event.NoStream, data, event.WithIDs(ids...))
				})
			}
			close(start)
			wg.Wait()
			stored := mustCollect(t, "ReadStream", s.ReadStream(t.Context(), stream, 0, 0))
			if len(stored) != 2 {
				t.Fatalf("ReadStream(%q) = %s, want 2 events", stream, places(stored))
			}
			for i := range n {
				if errs[i] != nil {
					t.Errorf("round %d: Append %d of %d concurrent identical appends = %v, want nil", round, i, n, errs[i])
					continue
				}
				checkEvents(t, fmt.Sprintf("round %d: Append %d", round, i), results[i], stored)
			}
		}
	})
}

// Concurrent appends of one new ID to different streams: one wins, the
// others fail with ErrDuplicateEventID and write nothing.
func TestAppendDuplicateIDConcurrent(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		const n = 8
		for round := range 5 {
			id := uuid.New()
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = s.Append(t.Context(), fmt.Sprintf("dup-%d-%d", round, i), event.NoStream,
						[]any{Note{Text: "x"}}, event.WithIDs(id))
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
					if v := streamVersion(t, s, stream); v != 1 {
						t.Errorf("StreamVersion(%q) = %d after its append succeeded, want 1", stream, v)
					}
				case errors.Is(err, event.ErrDuplicateEventID):
					if v := streamVersion(t, s, stream); v != 0 {
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
	})
}

// Appends fired together land in one group-commit transaction; the ones
// that fail their checks leave no trace and the others are stored.
func TestAppendAtomicInBatch(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		taken := uuid.New()
		mustAppend(t, s, "existing", event.NoStream, []any{Opened{Owner: "ann"}}, event.WithIDs(taken))

		type job struct {
			stream   string
			expected event.ExpectedVersion
			ids      []uuid.UUID
			want     error // nil: succeeds
			got      []event.Event
			err      error
		}
		newIDs := func(n int) []uuid.UUID {
			ids := make([]uuid.UUID, n)
			for i := range ids {
				ids[i] = uuid.New()
			}
			return ids
		}
		var succeeded []event.Event
		failedIDs := map[uuid.UUID]string{}
		for round := range 10 {
			jobs := []*job{
				{stream: fmt.Sprintf("ok-%d-a", round), expected: event.NoStream, ids: newIDs(3)},
				{stream: fmt.Sprintf("ok-%d-b", round), expected: event.Any, ids: newIDs(2)},
				{stream: "existing", expected: event.NoStream, ids: newIDs(3), want: event.ErrVersionConflict},
				{stream: fmt.Sprintf("ok-%d-c", round), expected: event.NoStream, ids: newIDs(1)},
				{stream: fmt.Sprintf("bad-%d-d", round), expected: event.Exact(5), ids: newIDs(2), want: event.ErrVersionConflict},
				{stream: fmt.Sprintf("bad-%d-e", round), expected: event.NoStream, ids: append(newIDs(2), taken), want: event.ErrDuplicateEventID},
				{stream: fmt.Sprintf("bad-%d-f", round), expected: event.StreamExists, ids: newIDs(1), want: event.ErrVersionConflict},
				{stream: fmt.Sprintf("ok-%d-g", round), expected: event.NoStream, ids: newIDs(4)},
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, j := range jobs {
				wg.Go(func() {
					data := make([]any, len(j.ids))
					for i := range data {
						data[i] = Tick{Writer: round, Seq: i}
					}
					<-start
					j.got, j.err = s.Append(ctx, j.stream, j.expected, data, event.WithIDs(j.ids...))
				})
			}
			close(start)
			wg.Wait()
			for _, j := range jobs {
				if j.want == nil {
					if j.err != nil {
						t.Errorf("round %d: Append(%q, %v) = %v, want nil", round, j.stream, j.expected, j.err)
						continue
					}
					succeeded = append(succeeded, j.got...)
					continue
				}
				if !errors.Is(j.err, j.want) {
					t.Errorf("round %d: Append(%q, %v) = %v, want %v", round, j.stream, j.expected, j.err, j.want)
				}
				for _, id := range j.ids {
					if id != taken {
						failedIDs[id] = j.stream
					}
				}
				if j.stream != "existing" {
					if v := streamVersion(t, s, j.stream); v != 0 {
						t.Errorf("round %d: StreamVersion(%q) = %d after a failed append, want 0", round, j.stream, v)
					}
				}
			}
		}
		if v := streamVersion(t, s, "existing"); v != 1 {
			t.Errorf("StreamVersion(existing) = %d, want 1", v)
		}
		all := mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		checkOrder(t, "ReadAll", all)
		byID := map[uuid.UUID]event.Event{}
		for _, e := range all {
			byID[e.ID] = e
			if st, bad := failedIDs[e.ID]; bad {
				t.Errorf("ReadAll has event %v (%s) of a failed append to %q", e.ID, places([]event.Event{e}), st)
			}
		}
		for _, e := range succeeded {
			got, ok := byID[e.ID]
			if !ok {
				t.Errorf("event %s returned by a successful Append is not stored", places([]event.Event{e}))
				continue
			}
			if d := diffEvent(got, e); d != "" {
				t.Errorf("stored event %v: %s", e.ID, d)
			}
		}
		if want := len(succeeded) + 1; len(all) != want {
			t.Errorf("ReadAll() has %d events, want %d", len(all), want)
		}
	})
}

func TestAppendLargePayload(t *testing.T) {
	t.Parallel()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i*7%36]
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		got := mustAppend(t, s, "big", event.NoStream, []any{Note{Text: string(big)}, Deposited{Amount: 1}})
		if n := got[0].Data.(Note); n.Text != string(big) {
			t.Fatalf("Append returned data of %d bytes, want the 1 MiB written", len(n.Text))
		}
		e, err := s.ReadEvent(ctx, "big", 1)
		if err != nil {
			t.Fatalf("ReadEvent(big, 1) = %v", err)
		}
		checkEvents(t, "ReadEvent(big, 1)", []event.Event{e}, got[:1])
		checkEvents(t, "ReadStream(big)", mustCollect(t, "ReadStream", s.ReadStream(ctx, "big", 0, 0)), got)
		checkEvents(t, "ReadAll", mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0)), got)
	})
}

// A string with NUL gets the same answer on both backends: it round trips.
func TestNULInDataAndMetadata(t *testing.T) {
	t.Parallel()
	text := "before\u0000after\x00"
	meta := map[string]string{"plain": "v", "nul": "a\u0000b", "k\u0000ey": "x"}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		got, err := s.Append(ctx, "nul", event.NoStream, []any{Note{Text: text}}, event.WithMetadata(meta))
		if err != nil {
			t.Fatalf("Append(data and metadata with NUL) = %v, want nil", err)
		}
		if n, ok := got[0].Data.(Note); !ok || n.Text != text {
			t.Errorf("Append returned data %q, want %q", got[0].Data, Note{Text: text})
		}
		if !equalMaps(got[0].Metadata, meta) {
			t.Errorf("Append returned metadata %q, want %q", got[0].Metadata, meta)
		}
		read, err := s.ReadEvent(ctx, "nul", 1)
		if err != nil {
			t.Fatalf("ReadEvent(nul, 1) = %v", err)
		}
		if n, ok := read.Data.(Note); !ok || n.Text != text {
			t.Errorf("ReadEvent data = %q, want %q", read.Data, Note{Text: text})
		}
		if !equalMaps(read.Metadata, meta) {
			t.Errorf("ReadEvent metadata = %q, want %q", read.Metadata, meta)
		}
		checkEvents(t, "ReadAll", mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0)), got)
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestTablePrefix(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		ctx := t.Context()
		a := newStore(t, db.Gorm, newRegistry(), eventstore.Options{TablePrefix: "alpha_"})
		b := newStore(t, db.Gorm, newRegistry(), eventstore.Options{TablePrefix: "beta_"})
		def := newStore(t, db.Gorm, newRegistry(), eventstore.Options{})
		migrate(t, a)
		migrate(t, b)

		// Before the default store is migrated, it has no tables.
		if _, err := def.Append(ctx, "s", event.NoStream, []any{Note{}}); err == nil {
			t.Errorf("Append on an unmigrated default-prefix store = nil error, want an error (its tables should not exist)")
		}
		migrate(t, def)

		ea := mustAppend(t, a, "s", event.NoStream, []any{Note{Text: "alpha"}, Note{Text: "alpha 2"}})
		eb := mustAppend(t, b, "s", event.NoStream, []any{Note{Text: "beta"}})
		mustAppend(t, b, "only-beta", event.NoStream, []any{Note{Text: "beta"}})

		checkEvents(t, "alpha ReadStream(s)", mustCollect(t, "ReadStream", a.ReadStream(ctx, "s", 0, 0)), ea)
		checkEvents(t, "beta ReadStream(s)", mustCollect(t, "ReadStream", b.ReadStream(ctx, "s", 0, 0)), eb)
		checkEvents(t, "alpha ReadAll", mustCollect(t, "ReadAll", a.ReadAll(ctx, 0, 0)), ea)
		if v := streamVersion(t, a, "only-beta"); v != 0 {
			t.Errorf("alpha StreamVersion(only-beta) = %d, want 0", v)
		}
		if h := head(t, def); h != 0 {
			t.Errorf("default-prefix Head() = %d, want 0", h)
		}
		if all := mustCollect(t, "ReadAll", def.ReadAll(ctx, 0, 0)); len(all) != 0 {
			t.Errorf("default-prefix ReadAll() = %s, want nothing", places(all))
		}
		if err := b.DeleteStream(ctx, "s", event.Any); err != nil {
			t.Fatalf("beta DeleteStream(s) = %v", err)
		}
		// The deletion in beta leaves alpha's stream alone.
		mustAppend(t, a, "s", event.Exact(2), []any{Note{Text: "alpha 3"}})
		if _, err := b.Append(ctx, "s", event.Any, []any{Note{}}); !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("beta Append(s) after its deletion = %v, want ErrStreamDeleted", err)
		}
	})
}

func TestOptionsRejected(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.SQLite)
	for _, tt := range []struct {
		name string
		opts eventstore.Options
	}{
		{"negative_poll_interval", eventstore.Options{PollInterval: -1}},
		{"negative_page_size", eventstore.Options{PageSize: -1}},
		{"table_prefix_with_quote", eventstore.Options{TablePrefix: `x"; DROP TABLE y; --`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := eventstore.New(db.Gorm, newRegistry(), tt.opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("New(%+v) = %v, want ErrInvalidArgument", tt.opts, err)
			}
		})
	}
	if _, err := eventstore.New(nil, newRegistry(), eventstore.Options{}); err == nil {
		t.Errorf("New(nil db) = nil error, want an error")
	}
	if _, err := eventstore.New(db.Gorm, nil, eventstore.Options{}); err == nil {
		t.Errorf("New(nil registry) = nil error, want an error")
	}
}

// Appends whose contexts are cancelled at random moments, some while they
// wait in the group-commit queue and some while their batch commits: an
// append that reports success is stored, one that reports
// context.Canceled left nothing.
func TestAppendCancelledWhileInFlight(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		const writers, perWriter = 8, 40
		type attempt struct {
			ids []uuid.UUID
			got []event.Event
			err error
		}
		attempts := make([][]attempt, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					ctx, cancel := context.WithCancel(t.Context())
					delay := time.Duration((w*perWriter+i)*7919%3000) * time.Microsecond
					stop := time.AfterFunc(delay, cancel)
					ids := []uuid.UUID{uuid.New(), uuid.New()}
					got, err := s.Append(ctx, fmt.Sprintf("c-%d", w), event.Any,
						[]any{Tick{Writer: w, Seq: 2 * i}, Tick{Writer: w, Seq: 2*i + 1}}, event.WithIDs(ids...))
					stop.Stop()
					cancel()
					attempts[w] = append(attempts[w], attempt{ids, got, err})
				}
			})
		}
		wg.Wait()
		all := mustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0))
		stored := map[uuid.UUID]event.Event{}
		for _, e := range all {
			stored[e.ID] = e
		}
		var ok, cancelled int
		for w, as := range attempts {
			for i, a := range as {
				switch {
				case a.err == nil:
					ok++
					for _, e := range a.got {
						if d := diffEvent(stored[e.ID], e); d != "" {
							t.Errorf("writer %d append %d succeeded, but its event %v is stored as: %s", w, i, e.ID, d)
						}
					}
				case errors.Is(a.err, context.Canceled):
					cancelled++
					for _, id := range a.ids {
						if e, found := stored[id]; found {
							t.Errorf("writer %d append %d returned %v, but its event %s is stored", w, i, a.err, places([]event.Event{e}))
						}
					}
				default:
					t.Errorf("writer %d append %d = %v, want nil or context.Canceled", w, i, a.err)
				}
			}
		}
		t.Logf("%d appends succeeded, %d cancelled", ok, cancelled)
		if len(all) != 2*ok {
			t.Errorf("the store holds %d events, want %d (2 per successful append)", len(all), 2*ok)
		}
		// Stream versions have no holes.
		for w := range writers {
			evs := mustCollect(t, "ReadStream", s.ReadStream(t.Context(), fmt.Sprintf("c-%d", w), 0, 0))
			for i, e := range evs {
				if e.Version != int64(i+1) {
					t.Errorf("stream c-%d: event %d has version %d, want %d", w, i, e.Version, i+1)
					break
				}
			}
		}
	})
}

// One append far larger than a group-commit batch and than SQLite's limit
// of bound variables per statement.
func TestAppendManyEventsAtOnce(t *testing.T) {
	t.Parallel()
	n := 20000
	if testing.Short() {
		n = 5000
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		data := make([]any, n)
		for i := range data {
			data[i] = Tick{Seq: i}
		}
		mustAppend(t, s, "before", event.NoStream, []any{Note{}})
		got := mustAppend(t, s, "many", event.NoStream, data, event.WithCorrelationID("bulk"))
		checkOrder(t, "Append", got)
		for i, e := range got {
			if e.Version != int64(i+1) || e.Data != data[i] {
				t.Fatalf("Append: event %d is version %d with %v, want version %d with %v", i, e.Version, e.Data, i+1, data[i])
			}
		}
		checkEvents(t, "ReadStream(many)", mustCollect(t, "ReadStream", s.ReadStream(t.Context(), "many", 0, 0)), got)
		if v := streamVersion(t, s, "many"); v != int64(n) {
			t.Errorf("StreamVersion(many) = %d, want %d", v, n)
		}
		if all := mustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0)); len(all) != n+1 {
			t.Errorf("ReadAll() has %d events, want %d", len(all), n+1)
		}
	})
}

// Two stores (as two processes would) race on a new stream and on a new
// event ID while other appends share their batches: exactly one contender
// wins each race, the losers get the right error, and the bystanders in
// the same batches are stored.
func TestAppendRacesAcrossStores(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{})
		stores := []*eventstore.Store{s, newStore(t, openAgain(t, db), newRegistry(), eventstore.Options{})}
		ctx := t.Context()
		rounds := 15
		if testing.Short() {
			rounds = 4
		}
		var bystanders []event.Event
		for round := range rounds {
			shared := uuid.New()
			var (
				wg                 sync.WaitGroup
				mu                 sync.Mutex
				streamWins, idWins int
				streamErrs, idErrs []error
				bystanderErrs      []error
				start              = make(chan struct{})
			)
			for i := range 12 {
				st := stores[i%2]
				wg.Go(func() {
					<-start
					switch i / 4 {
					case 0: // race for a new stream
						_, err := st.Append(ctx, fmt.Sprintf("race-%d", round), event.NoStream, []any{Tick{Writer: i}})
						mu.Lock()
						defer mu.Unlock()
						if err == nil {
							streamWins++
						} else if !errors.Is(err, event.ErrVersionConflict) {
							streamErrs = append(streamErrs, err)
						}
					case 1: // race for a new event ID
						_, err := st.Append(ctx, fmt.Sprintf("id-%d-%d", round, i), event.NoStream, []any{Tick{Writer: i}}, event.WithIDs(shared))
						mu.Lock()
						defer mu.Unlock()
						if err == nil {
							idWins++
						} else if !errors.Is(err, event.ErrDuplicateEventID) {
							idErrs = append(idErrs, err)
						}
					default: // bystander
						got, err := st.Append(ctx, fmt.Sprintf("by-%d-%d", round, i), event.NoStream, []any{Tick{Writer: i}, Tick{Writer: i, Seq: 1}})
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							bystanderErrs = append(bystanderErrs, err)
						}
						bystanders = append(bystanders, got...)
					}
				})
			}
			close(start)
			wg.Wait()
			if streamWins != 1 || len(streamErrs) > 0 {
				t.Errorf("round %d: %d of 4 racing Append(NoStream) won, other errors %v; want 1 winner and version conflicts", round, streamWins, streamErrs)
			}
			if idWins != 1 || len(idErrs) > 0 {
				t.Errorf("round %d: %d of 4 racing appends of one ID won, other errors %v; want 1 winner and duplicate-ID errors", round, idWins, idErrs)
			}
			if len(bystanderErrs) > 0 {
				t.Errorf("round %d: bystander appends failed: %v", round, bystanderErrs)
			}
		}
		all := mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		checkOrder(t, "ReadAll", all)
		if want := rounds * (1 + 1 + 2*4); len(all) != want {
			t.Errorf("ReadAll() has %d events, want %d", len(all), want)
		}
		byID := map[uuid.UUID]event.Event{}
		for _, e := range all {
			byID[e.ID] = e
		}
		for _, e := range bystanders {
			if d := diffEvent(byID[e.ID], e); d != "" {
				t.Errorf("bystander event %v: %s", e.ID, d)
			}
		}
	})
}

// Metadata that is not valid UTF-8 is either rejected like a stream ID or a
// causation ID that is not, or stored as given: what Append returns is
// what a reader gets.
func TestInvalidUTF8Metadata(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		for i, meta := range []map[string]string{{"k": "a\xffb"}, {"k\xfe": "v"}} {
			stream := fmt.Sprintf("meta-%d", i)
			got, err := s.Append(t.Context(), stream, event.NoStream, []any{Note{}}, event.WithMetadata(meta))
			if errors.Is(err, eventstore.ErrInvalidArgument) {
				continue
			}
			if err != nil {
				t.Fatalf("Append(metadata %q) = %v, want nil or ErrInvalidArgument", meta, err)
			}
			read, err := s.ReadEvent(t.Context(), stream, 1)
			if err != nil {
				t.Fatalf("ReadEvent(%q, 1) = %v", stream, err)
			}
			if !equalMaps(read.Metadata, got[0].Metadata) {
				t.Errorf("Append(metadata %q) returned metadata %q, but ReadEvent gives %q", meta, got[0].Metadata, read.Metadata)
			}
		}
	})
}
