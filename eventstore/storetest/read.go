package storetest

import (
	"context"
	"encoding/json"
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

// readFixture is a store holding stream "r" (versions 1..5) interleaved with
// stream "o" (versions 1..2), in this position order:
// r1 r2 o1 r3 o2 r4 r5.
type readFixture struct {
	r, o []event.Event // by version
	all  []event.Event // in append order
}

func newReadFixture(t *testing.T, st *eventstore.Store) readFixture {
	t.Helper()
	var f readFixture
	add := func(stream string, exp event.ExpectedVersion, data ...any) {
		evs := testkit.MustAppend(t, st, stream, exp, data, event.WithMetadata(map[string]string{"n": fmt.Sprint(len(f.all))}))
		f.all = append(f.all, evs...)
		if stream == "r" {
			f.r = append(f.r, evs...)
		} else {
			f.o = append(f.o, evs...)
		}
	}
	add("r", event.NoStream, testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 1})
	add("o", event.Any, testkit.Noted{Text: "o1"})
	add("r", event.Exact(2), testkit.Withdrawn{Amount: 3})
	add("o", event.StreamExists, testkit.Deposited{Amount: 100})
	add("r", event.Exact(3), testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3})
	return f
}

// testReads checks every read of one event, a stream (both ways) and the
// whole store, with the default page size and with pages of two events.
func testReads(t *testing.T, s *suite) {
	db := s.database(t)
	st := db.migrated(t)
	f := newReadFixture(t, st)
	paged := db.store(t, pageSize(2))
	t.Run("with_the_default_page_size", func(t *testing.T) { testReadFixture(t, st, f) })
	t.Run("with_pages_of_2_events", func(t *testing.T) { testReadFixture(t, paged, f) })
	t.Run("empty_store_reads_nothing", func(t *testing.T) { testEmptyStore(t, s) })
	t.Run("recorded_fields_read_back_as_appended", func(t *testing.T) { testRecordedFields(t, s) })
	t.Run("holes_in_positions_are_skipped_silently", func(t *testing.T) { testHoles(t, s) })
}

func testReadFixture(t *testing.T, st *eventstore.Store, f readFixture) {
	ctx := t.Context()
	t.Run("ReadEvent_finds_each_version_and_nothing_else", func(t *testing.T) {
		for i, want := range f.r {
			got, err := st.ReadEvent(ctx, "r", int64(i+1))
			if err != nil {
				t.Errorf("ReadEvent(r, %d) = %v, want nil", i+1, err)
				continue
			}
			testkit.CheckEvents(t, fmt.Sprintf("ReadEvent(r, %d)", i+1), []event.Event{got}, []event.Event{want})
		}
		for _, tt := range []struct {
			stream  string
			version int64
		}{{"r", 6}, {"r", 100}, {"missing", 1}, {"o", 3}} {
			if _, err := st.ReadEvent(ctx, tt.stream, tt.version); !errors.Is(err, event.ErrEventNotFound) {
				t.Errorf("ReadEvent(%q, %d) = %v, want ErrEventNotFound", tt.stream, tt.version, err)
			}
		}
		if _, err := st.ReadEvent(ctx, "r", 0); !errors.Is(err, event.ErrEventNotFound) && !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("ReadEvent(r, 0) = %v, want ErrEventNotFound or ErrInvalidArgument", err)
		}
	})

	t.Run("ReadStream_reads_forward_from_any_version_with_any_limit", func(t *testing.T) {
		for _, tt := range []struct {
			from     int64
			limit    int
			versions []int
		}{
			{0, 0, []int{1, 2, 3, 4, 5}},
			{1, 0, []int{1, 2, 3, 4, 5}},
			{3, 0, []int{3, 4, 5}},
			{2, 2, []int{2, 3}},
			{0, 1, []int{1}},
			{4, 1, []int{4}},
			{5, 0, []int{5}},
			{5, 10, []int{5}},
			{3, 3, []int{3, 4, 5}},
			{6, 0, nil},
			{100, 5, nil},
		} {
			got := testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "r", tt.from, tt.limit))
			testkit.CheckEvents(t, fmt.Sprintf("ReadStream(r, %d, %d)", tt.from, tt.limit), got, pick(f.r, tt.versions))
		}
		if got := testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "missing", 0, 0)); len(got) != 0 {
			t.Errorf("ReadStream(missing) = %s, want nothing", testkit.Places(got))
		}
		testkit.CheckEvents(t, "ReadStream(o)", testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "o", 0, 0)), f.o)
	})

	t.Run("ReadStreamBackward_reads_back_from_any_version_with_any_limit", func(t *testing.T) {
		for _, tt := range []struct {
			from     int64
			limit    int
			versions []int
		}{
			{0, 0, []int{5, 4, 3, 2, 1}},
			{5, 0, []int{5, 4, 3, 2, 1}},
			{3, 0, []int{3, 2, 1}},
			{0, 2, []int{5, 4}},
			{4, 2, []int{4, 3}},
			{2, 5, []int{2, 1}},
			{1, 0, []int{1}},
			{0, 1, []int{5}},
		} {
			got := testkit.MustCollect(t, "ReadStreamBackward", st.ReadStreamBackward(ctx, "r", tt.from, tt.limit))
			testkit.CheckEvents(t, fmt.Sprintf("ReadStreamBackward(r, %d, %d)", tt.from, tt.limit), got, pick(f.r, tt.versions))
		}
		if got := testkit.MustCollect(t, "ReadStreamBackward", st.ReadStreamBackward(ctx, "missing", 0, 0)); len(got) != 0 {
			t.Errorf("ReadStreamBackward(missing) = %s, want nothing", testkit.Places(got))
		}
	})

	t.Run("ReadAll_reads_in_position_order_with_limits_and_type_filters", func(t *testing.T) {
		all := f.all
		last := all[len(all)-1].Position
		deposits := filter(all, testkit.TypeDeposited)
		for _, tt := range []struct {
			name  string
			after int64
			limit int
			types []string
			want  []event.Event
		}{
			{"everything", 0, 0, nil, all},
			{"after_the_third", all[2].Position, 0, nil, all[3:]},
			{"first_three", 0, 3, nil, all[:3]},
			{"two_after_the_second", all[1].Position, 2, nil, all[2:4]},
			{"after_the_last", last, 0, nil, nil},
			{"far_after_the_last", last + 1000, 0, nil, nil},
			{"limit_above_count", 0, 100, nil, all},
			{"deposits", 0, 0, []string{testkit.TypeDeposited}, deposits},
			{"two_deposits", 0, 2, []string{testkit.TypeDeposited}, deposits[:2]},
			{"deposits_after_the_first", deposits[0].Position, 0, []string{testkit.TypeDeposited}, deposits[1:]},
			{"deposits_and_notes", 0, 0, []string{testkit.TypeDeposited, testkit.TypeNoted}, filter(all, testkit.TypeDeposited, testkit.TypeNoted)},
			{"unknown_type_name", 0, 0, []string{"no.such.type"}, nil},
			{"wildcard_type_names", 0, 0, []string{"deposit%", "_eposited", "%"}, nil},
			{"type_name_in_another_case", 0, 0, []string{strings.ToUpper(testkit.TypeDeposited)}, nil},
			{"empty_type_list", 0, 0, []string{}, all},
		} {
			got := testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, tt.after, tt.limit, tt.types...))
			testkit.CheckEvents(t, fmt.Sprintf("ReadAll(%d, %d, %q) [%s]", tt.after, tt.limit, tt.types, tt.name), got, tt.want)
		}
		// Walking the store one event at a time by position gives
		// everything once.
		var walked []event.Event
		for after := int64(0); len(walked) <= len(all); {
			page := testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, after, 1))
			if len(page) == 0 {
				break
			}
			walked = append(walked, page...)
			after = page[len(page)-1].Position
		}
		testkit.CheckEvents(t, "ReadAll one at a time", walked, all)
	})

	t.Run("StreamVersion_and_Head_are_the_last_version_and_position", func(t *testing.T) {
		for stream, want := range map[string]int64{"r": 5, "o": 2, "missing": 0} {
			if v := testkit.StreamVersion(t, st, stream); v != want {
				t.Errorf("StreamVersion(%q) = %d, want %d", stream, v, want)
			}
		}
		if h, want := testkit.Head(t, st), f.all[len(f.all)-1].Position; h != want {
			t.Errorf("Head() = %d, want %d", h, want)
		}
	})

	t.Run("early_break_ends_the_read_cleanly", func(t *testing.T) {
		// Stopping a range loop early must end the iterator cleanly (a
		// yield after false panics).
		for name, seq := range map[string]func() int{
			"ReadStream":         func() int { return breakAfter(st.ReadStream(ctx, "r", 0, 0), 2) },
			"ReadStreamBackward": func() int { return breakAfter(st.ReadStreamBackward(ctx, "r", 0, 0), 2) },
			"ReadAll":            func() int { return breakAfter(st.ReadAll(ctx, 0, 0), 3) },
		} {
			if n := seq(); n != 0 {
				t.Errorf("%s: %d errors before the break", name, n)
			}
		}
		// The store still works afterwards (no connection or lock kept).
		if v := testkit.StreamVersion(t, st, "r"); v != 5 {
			t.Errorf("StreamVersion(r) = %d after early breaks, want 5", v)
		}
	})
}

// breakAfter ranges over seq and breaks after n events, returning the
// number of errors seen.
func breakAfter(seq func(func(event.Event, error) bool), n int) int {
	errs, i := 0, 0
	for _, err := range seq {
		if err != nil {
			errs++
		}
		if i++; i == n {
			break
		}
	}
	return errs
}

// pick returns the events of the given versions (1-based) of a stream.
func pick(stream []event.Event, versions []int) []event.Event {
	var out []event.Event
	for _, v := range versions {
		out = append(out, stream[v-1])
	}
	return out
}

// filter returns the events of the given types, in their order.
func filter(evs []event.Event, types ...string) []event.Event {
	var out []event.Event
	for _, e := range evs {
		for _, ty := range types {
			if e.Type == ty {
				out = append(out, e)
			}
		}
	}
	return out
}

func testEmptyStore(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	if h := testkit.Head(t, st); h != 0 {
		t.Errorf("Head() = %d on an empty store, want 0", h)
	}
	if all := testkit.MustCollect(t, "ReadAll", st.ReadAll(t.Context(), 0, 0)); len(all) != 0 {
		t.Errorf("ReadAll() = %s on an empty store, want nothing", testkit.Places(all))
	}
	if v := testkit.StreamVersion(t, st, "s"); v != 0 {
		t.Errorf("StreamVersion(s) = %d on an empty store, want 0", v)
	}
	b, err := st.ReadBatch(t.Context(), 0, 10)
	if err != nil || len(b.Events) != 0 || b.Through != 0 {
		t.Errorf("ReadBatch(0, 10) = %d events through %d, %v on an empty store, want none through 0", len(b.Events), b.Through, err)
	}
}

// testRecordedFields: IDs from Options.NewID, RecordedAt from Options.Now
// in UTC at microsecond precision, metadata merged from several options,
// causation and correlation IDs: Append returns them and every read gives
// the same.
func testRecordedFields(t *testing.T, s *suite) {
	clock := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 2*60*60))
	var mu sync.Mutex
	generated := map[uuid.UUID]bool{}
	st := s.database(t).migrated(t, func(o *eventstore.Options) {
		o.Now = func() time.Time { return clock }
		o.NewID = func() uuid.UUID {
			id := uuid.New()
			mu.Lock()
			generated[id] = true
			mu.Unlock()
			return id
		}
	})
	ctx := t.Context()
	meta := event.WithMetadata(map[string]string{"user": "ann", "ip": "10.0.0.1"})
	more := event.WithMetadata(map[string]string{"ip": "10.0.0.2", "trace": "t-1"})
	got := testkit.MustAppend(t, st, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 42}},
		meta, more, event.WithCausationID("cmd-7"), event.WithCorrelationID("conv-3"))
	plain := testkit.MustAppend(t, st, "acct-1", event.Exact(2), []any{testkit.Noted{Text: "plain"}})

	wantMeta := map[string]string{"user": "ann", "ip": "10.0.0.2", "trace": "t-1"}
	truncated := clock.UTC().Truncate(time.Microsecond)
	rounded := clock.UTC().Round(time.Microsecond)
	mu.Lock()
	for i, e := range append(got, plain...) {
		if !generated[e.ID] {
			t.Errorf("event %d: ID %v was not made by Options.NewID", i, e.ID)
		}
		if !e.RecordedAt.Equal(truncated) && !e.RecordedAt.Equal(rounded) {
			t.Errorf("event %d: RecordedAt = %v, want %v at microsecond precision", i, e.RecordedAt, clock.UTC())
		}
		if e.RecordedAt.Location() != time.UTC {
			t.Errorf("event %d: RecordedAt location = %q, want UTC", i, e.RecordedAt.Location())
		}
	}
	mu.Unlock()
	if got[0].ID == got[1].ID {
		t.Errorf("two events got the same ID %v", got[0].ID)
	}
	for i, e := range got {
		if !maps.Equal(e.Metadata, wantMeta) || e.CausationID != "cmd-7" || e.CorrelationID != "conv-3" {
			t.Errorf("event %d: Metadata %q, CausationID %q, CorrelationID %q; want %q, %q, %q",
				i, e.Metadata, e.CausationID, e.CorrelationID, wantMeta, "cmd-7", "conv-3")
		}
	}
	if want := []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 42}}; got[0].Data != want[0] || got[1].Data != want[1] {
		t.Errorf("Append returned data %v, %v; want %v", got[0].Data, got[1].Data, want)
	}
	if got[0].Type != testkit.TypeOpened || got[1].Type != testkit.TypeDeposited {
		t.Errorf("Append returned types %q, %q; want %q, %q", got[0].Type, got[1].Type, testkit.TypeOpened, testkit.TypeDeposited)
	}
	if p := plain[0]; p.Metadata != nil || p.CausationID != "" || p.CorrelationID != "" {
		t.Errorf("event without options: Metadata %#v, CausationID %q, CorrelationID %q; want nil, empty, empty",
			p.Metadata, p.CausationID, p.CorrelationID)
	}

	want := append(got, plain...)
	read := testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "acct-1", 0, 0))
	testkit.CheckEvents(t, "ReadStream(acct-1)", read, want)
	if len(read) == 3 && read[2].Metadata != nil {
		t.Errorf("ReadStream: event without metadata has Metadata %#v, want nil", read[2].Metadata)
	}
	testkit.CheckEvents(t, "ReadAll", testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, 0, 0)), want)
	back := testkit.MustCollect(t, "ReadStreamBackward", st.ReadStreamBackward(ctx, "acct-1", 0, 0))
	testkit.CheckEvents(t, "ReadStreamBackward(acct-1)", back, []event.Event{want[2], want[1], want[0]})
	e, err := st.ReadEvent(ctx, "acct-1", 1)
	if err != nil {
		t.Fatalf("ReadEvent(acct-1, 1) = %v", err)
	}
	testkit.CheckEvents(t, "ReadEvent(acct-1, 1)", []event.Event{e}, want[:1])
}

// testHoles: failed appends (conflicts, duplicates, a cancelled context)
// and a deleted stream leave holes in the positions; ReadAll and Subscribe
// still deliver every stored event once, in position order.
func testHoles(t *testing.T, s *suite) {
	st := s.database(t).migrated(t, pageSize(3))
	ctx := t.Context()
	live := testkit.Follow(ctx, st, 0)

	var ok []event.Event
	ok = append(ok, testkit.MustAppend(t, st, "h1", event.NoStream, []any{testkit.Opened{Owner: "a"}, testkit.Deposited{Amount: 1}})...)
	if _, err := st.Append(ctx, "h1", event.NoStream, []any{testkit.Noted{}, testkit.Noted{}}); !errors.Is(err, event.ErrVersionConflict) {
		t.Errorf("Append(h1, NoStream) = %v, want ErrVersionConflict", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Append(cancelled, "h2", event.Any, []any{testkit.Noted{}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append(h2) with a cancelled context = %v, want context.Canceled", err)
	}
	ok = append(ok, testkit.MustAppend(t, st, "h2", event.Any, []any{testkit.Noted{Text: "h2"}})...)
	if _, err := st.Append(ctx, "h1", event.Exact(5), []any{testkit.Noted{}}); !errors.Is(err, event.ErrVersionConflict) {
		t.Errorf("Append(h1, Exact(5)) = %v, want ErrVersionConflict", err)
	}
	if _, err := st.Append(ctx, "h3", event.NoStream, []any{testkit.Noted{}}, event.WithIDs(ok[0].ID)); !errors.Is(err, event.ErrDuplicateEventID) {
		t.Errorf("Append(h3, ID of h1@1) = %v, want ErrDuplicateEventID", err)
	}
	// Concurrent appends to one new stream: one wins.
	var (
		mu   sync.Mutex
		wins int
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range 4 {
		wg.Go(func() {
			<-start
			got, err := st.Append(ctx, "h4", event.NoStream, []any{testkit.Tick{Writer: i}, testkit.Tick{Writer: i, Seq: 1}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				ok = append(ok, got...)
			case !errors.Is(err, event.ErrVersionConflict):
				t.Errorf("Append(h4, NoStream) = %v, want nil or ErrVersionConflict", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of 4 concurrent Append(h4, NoStream) succeeded, want 1", wins)
	}
	ok = append(ok, testkit.MustAppend(t, st, "h5", event.Any, []any{testkit.Deposited{Amount: 5}, testkit.Noted{}, testkit.Deposited{Amount: 6}})...)
	// Let the live subscription see h2 before it goes.
	live.WaitFor(t, ok)
	if err := st.DeleteStream(ctx, "h2", event.Any); err != nil {
		t.Fatalf("DeleteStream(h2) = %v", err)
	}
	ok = append(ok, testkit.MustAppend(t, st, "h6", event.NoStream, []any{testkit.Noted{Text: "last"}})...)
	var stored []event.Event
	for _, e := range ok {
		if e.StreamID != "h2" {
			stored = append(stored, e)
		}
	}
	testkit.CheckOrder(t, "successful appends", ok)

	testkit.CheckEvents(t, "ReadAll", testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, 0, 0)), stored)
	for i, e := range stored {
		got := testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, e.Position, 1))
		testkit.CheckEvents(t, fmt.Sprintf("ReadAll(after %d, limit 1)", e.Position), got, stored[i+1:min(i+2, len(stored))])
		// One position below an event finds that event, whatever the
		// holes.
		got = testkit.MustCollect(t, "ReadAll", st.ReadAll(ctx, e.Position-1, 1))
		testkit.CheckEvents(t, fmt.Sprintf("ReadAll(after %d, limit 1)", e.Position-1), got, stored[i:i+1])
	}
	testkit.CheckEvents(t, "Subscribe(0)", testkit.Follow(ctx, st, 0).Await(t, stored), stored)
	for i, e := range stored[:len(stored)-1] {
		want := stored[i+1:]
		testkit.CheckEvents(t, fmt.Sprintf("Subscribe(%d)", e.Position), testkit.Follow(ctx, st, e.Position).Await(t, want), want)
	}
	testkit.CheckEvents(t, "Subscribe(0) started before the appends", live.Await(t, ok), ok)
}

// Account v1 stored a full name; v2 splits it.
type accountV1 struct {
	Name string `json:"name"`
}

type accountV2 struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// secret is a type only one of the test's registries knows.
type secret struct {
	Code string `json:"code"`
}

// testDecoding checks reads of data a registry must upcast, and of data
// it cannot decode: a *event.DecodeError naming the type and the place,
// after the events before it, never a panic or a silent skip.
func testDecoding(t *testing.T, s *suite) {
	t.Run("old_schema_versions_are_upcast", func(t *testing.T) {
		db := s.database(t)
		ctx := t.Context()
		reg1 := testkit.NewRegistry()
		event.MustRegister[accountV1](reg1, "account")
		old := db.storeWith(t, reg1)
		testkit.Migrate(t, old)
		written := testkit.MustAppend(t, old, "acc", event.NoStream, []any{accountV1{Name: "Ann Lee"}, testkit.Noted{Text: "n"}})

		reg2 := testkit.NewRegistry()
		if err := event.RegisterVersion[accountV2](reg2, "account", 2); err != nil {
			t.Fatal(err)
		}
		if err := reg2.AddUpcaster("account", 1, func(b []byte) ([]byte, error) {
			var v1 accountV1
			if err := json.Unmarshal(b, &v1); err != nil {
				return nil, err
			}
			first, last, _ := strings.Cut(v1.Name, " ")
			return json.Marshal(accountV2{First: first, Last: last})
		}); err != nil {
			t.Fatal(err)
		}
		cur := db.storeWith(t, reg2)
		fresh := testkit.MustAppend(t, cur, "acc", event.Exact(2), []any{accountV2{First: "Bo", Last: "Yu"}})

		want := []event.Event{written[0], written[1], fresh[0]}
		want[0].Data = accountV2{First: "Ann", Last: "Lee"}
		testkit.CheckEvents(t, "ReadStream with the v2 registry", testkit.MustCollect(t, "ReadStream", cur.ReadStream(ctx, "acc", 0, 0)), want)
		testkit.CheckEvents(t, "ReadAll with the v2 registry", testkit.MustCollect(t, "ReadAll", cur.ReadAll(ctx, 0, 0)), want)
		e, err := cur.ReadEvent(ctx, "acc", 1)
		if err != nil {
			t.Fatalf("ReadEvent(acc, 1) = %v", err)
		}
		testkit.CheckEvents(t, "ReadEvent(acc, 1)", []event.Event{e}, want[:1])

		// The v1 program cannot read what v2 wrote: a decode error, not a
		// silent misread.
		_, err = old.ReadEvent(ctx, "acc", 3)
		var de *event.DecodeError
		if !errors.As(err, &de) || de.Type != "account" || de.Position != fresh[0].Position {
			t.Errorf("v1 ReadEvent(acc, 3) = %v, want a *event.DecodeError for account at position %d", err, fresh[0].Position)
		}
	})

	db := s.database(t)
	ctx := t.Context()
	reg := testkit.NewRegistry()
	event.MustRegister[secret](reg, "secret")
	w := db.storeWith(t, reg)
	testkit.Migrate(t, w)
	written := testkit.MustAppend(t, w, "x", event.NoStream, []any{testkit.Noted{Text: "a"}, secret{Code: "s"}, testkit.Noted{Text: "b"}})
	bad := written[1]
	checkDecodeError := func(t *testing.T, what string, err error, wantType string, at event.Event) {
		t.Helper()
		var de *event.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s = %v, want a *event.DecodeError", what, err)
			return
		}
		if de.Type != wantType || de.Position != at.Position {
			t.Errorf("%s: DecodeError{Type: %q, Position: %d}, want {%q, %d}", what, de.Type, de.Position, wantType, at.Position)
		}
		if de.StreamID != "" && (de.StreamID != at.StreamID || de.Version != at.Version) {
			t.Errorf("%s: DecodeError at %s@%d, want %s@%d", what, de.StreamID, de.Version, at.StreamID, at.Version)
		}
	}

	t.Run("an_unknown_type_is_a_decode_error_after_the_events_before_it", func(t *testing.T) {
		r := db.store(t)
		_, err := r.ReadEvent(ctx, "x", 2)
		checkDecodeError(t, "ReadEvent(x, 2)", err, "secret", bad)
		if !errors.Is(err, event.ErrUnknownType) {
			t.Errorf("ReadEvent(x, 2) = %v, want it to match ErrUnknownType", err)
		}
		if e, err := r.ReadEvent(ctx, "x", 1); err != nil || e.ID != written[0].ID {
			t.Errorf("ReadEvent(x, 1) = %s, %v; want the first event", testkit.Places([]event.Event{e}), err)
		}

		got, err := testkit.Collect(r.ReadStream(ctx, "x", 0, 0))
		testkit.CheckEvents(t, "ReadStream(x) before the error", got, written[:1])
		checkDecodeError(t, "ReadStream(x)", err, "secret", bad)

		got, err = testkit.Collect(r.ReadStreamBackward(ctx, "x", 0, 0))
		testkit.CheckEvents(t, "ReadStreamBackward(x) before the error", got, written[2:3])
		checkDecodeError(t, "ReadStreamBackward(x)", err, "secret", bad)

		got, err = testkit.Collect(r.ReadAll(ctx, 0, 0))
		testkit.CheckEvents(t, "ReadAll before the error", got, written[:1])
		checkDecodeError(t, "ReadAll", err, "secret", bad)

		// A type filter that leaves the unknown type out reads on.
		got, err = testkit.Collect(r.ReadAll(ctx, 0, 0, testkit.TypeNoted))
		if err != nil {
			t.Errorf("ReadAll(types %q) = %v, want nil", testkit.TypeNoted, err)
		}
		testkit.CheckEvents(t, "ReadAll(notes)", got, []event.Event{written[0], written[2]})

		// A subscription stops at the event it cannot decode.
		f := testkit.Follow(ctx, r, 0)
		select {
		case <-f.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("Subscribe went on past an undecodable event")
		}
		got, err = f.Stop(t)
		testkit.CheckEvents(t, "Subscribe before the error", got, written[:1])
		checkDecodeError(t, "Subscribe", err, "secret", bad)
	})

	t.Run("data_not_fitting_the_type_is_a_decode_error", func(t *testing.T) {
		type noteAsNumber struct {
			Text int `json:"text"`
		}
		reg := event.NewRegistry(event.RegistryOptions{})
		event.MustRegister[noteAsNumber](reg, testkit.TypeNoted)
		event.MustRegister[secret](reg, "secret")
		r := db.storeWith(t, reg)
		_, err := r.ReadEvent(ctx, "x", 3)
		checkDecodeError(t, "ReadEvent(x, 3)", err, testkit.TypeNoted, written[2])
	})
}
