package eventstore_test

import (
	"encoding/json"
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

// readFixture is a store holding stream "r" (versions 1..5) interleaved with
// stream "o" (versions 1..2), in this position order:
// r1 r2 o1 r3 o2 r4 r5.
type readFixture struct {
	r, o []event.Event // by version
	all  []event.Event // in append order
}

func newReadFixture(t *testing.T, s *eventstore.Store) readFixture {
	t.Helper()
	var f readFixture
	add := func(stream string, exp event.ExpectedVersion, data ...any) {
		evs := mustAppend(t, s, stream, exp, data, event.WithMetadata(map[string]string{"n": fmt.Sprint(len(f.all))}))
		f.all = append(f.all, evs...)
		if stream == "r" {
			f.r = append(f.r, evs...)
		} else {
			f.o = append(f.o, evs...)
		}
	}
	add("r", event.NoStream, Opened{Owner: "ann"}, Deposited{Amount: 1})
	add("o", event.Any, Note{Text: "o1"})
	add("r", event.Exact(2), Note{Text: "r3"})
	add("o", event.StreamExists, Deposited{Amount: 100})
	add("r", event.Exact(3), Deposited{Amount: 2}, Deposited{Amount: 3})
	return f
}

func TestReads(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{})
		f := newReadFixture(t, s)
		paged := newStore(t, db.Gorm, newRegistry(), eventstore.Options{PageSize: 2})
		for _, st := range []struct {
			name string
			s    *eventstore.Store
		}{{"default_page_size", s}, {"page_size_2", paged}} {
			t.Run(st.name, func(t *testing.T) { testReads(t, st.s, f) })
		}
	})
}

func testReads(t *testing.T, s *eventstore.Store, f readFixture) {
	ctx := t.Context()
	t.Run("ReadEvent", func(t *testing.T) {
		for i, want := range f.r {
			got, err := s.ReadEvent(ctx, "r", int64(i+1))
			if err != nil {
				t.Errorf("ReadEvent(r, %d) = %v, want nil", i+1, err)
				continue
			}
			checkEvents(t, fmt.Sprintf("ReadEvent(r, %d)", i+1), []event.Event{got}, []event.Event{want})
		}
		for _, tt := range []struct {
			stream  string
			version int64
		}{{"r", 6}, {"r", 100}, {"missing", 1}, {"o", 3}} {
			if _, err := s.ReadEvent(ctx, tt.stream, tt.version); !errors.Is(err, event.ErrEventNotFound) {
				t.Errorf("ReadEvent(%q, %d) = %v, want ErrEventNotFound", tt.stream, tt.version, err)
			}
		}
		if _, err := s.ReadEvent(ctx, "r", 0); !errors.Is(err, event.ErrEventNotFound) && !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("ReadEvent(r, 0) = %v, want ErrEventNotFound or ErrInvalidArgument", err)
		}
	})

	t.Run("ReadStream", func(t *testing.T) {
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
			got := mustCollect(t, "ReadStream", s.ReadStream(ctx, "r", tt.from, tt.limit))
			checkEvents(t, fmt.Sprintf("ReadStream(r, %d, %d)", tt.from, tt.limit), got, pick(f.r, tt.versions))
		}
		if got := mustCollect(t, "ReadStream", s.ReadStream(ctx, "missing", 0, 0)); len(got) != 0 {
			t.Errorf("ReadStream(missing) = %s, want nothing", places(got))
		}
		checkEvents(t, "ReadStream(o)", mustCollect(t, "ReadStream", s.ReadStream(ctx, "o", 0, 0)), f.o)
	})

	t.Run("ReadStreamBackward", func(t *testing.T) {
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
			got := mustCollect(t, "ReadStreamBackward", s.ReadStreamBackward(ctx, "r", tt.from, tt.limit))
			checkEvents(t, fmt.Sprintf("ReadStreamBackward(r, %d, %d)", tt.from, tt.limit), got, pick(f.r, tt.versions))
		}
		if got := mustCollect(t, "ReadStreamBackward", s.ReadStreamBackward(ctx, "missing", 0, 0)); len(got) != 0 {
			t.Errorf("ReadStreamBackward(missing) = %s, want nothing", places(got))
		}
	})

	t.Run("ReadAll", func(t *testing.T) {
		all := f.all
		last := all[len(all)-1].Position
		deposits := filter(all, typeDeposited)
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
			{"deposits", 0, 0, []string{typeDeposited}, deposits},
			{"two_deposits", 0, 2, []string{typeDeposited}, deposits[:2]},
			{"deposits_after_the_first", deposits[0].Position, 0, []string{typeDeposited}, deposits[1:]},
			{"deposits_and_notes", 0, 0, []string{typeDeposited, typeNote}, filter(all, typeDeposited, typeNote)},
			{"unknown_type_name", 0, 0, []string{"no.such.type"}, nil},
			{"wildcard_type_name", 0, 0, []string{"test.%"}, nil},
			{"type_name_case", 0, 0, []string{"TEST.DEPOSITED"}, nil},
			{"empty_type_list", 0, 0, []string{}, all},
		} {
			got := mustCollect(t, "ReadAll", s.ReadAll(ctx, tt.after, tt.limit, tt.types...))
			checkEvents(t, fmt.Sprintf("ReadAll(%d, %d, %q) [%s]", tt.after, tt.limit, tt.types, tt.name), got, tt.want)
		}
		// Walking the store one event at a time by position gives
		// everything once.
		var walked []event.Event
		for after := int64(0); len(walked) <= len(all); {
			page := mustCollect(t, "ReadAll", s.ReadAll(ctx, after, 1))
			if len(page) == 0 {
				break
			}
			walked = append(walked, page...)
			after = page[len(page)-1].Position
		}
		checkEvents(t, "ReadAll one at a time", walked, all)
	})

	t.Run("StreamVersion_and_Head", func(t *testing.T) {
		for stream, want := range map[string]int64{"r": 5, "o": 2, "missing": 0} {
			if v := streamVersion(t, s, stream); v != want {
				t.Errorf("StreamVersion(%q) = %d, want %d", stream, v, want)
			}
		}
		if h, want := head(t, s), f.all[len(f.all)-1].Position; h != want {
			t.Errorf("Head() = %d, want %d", h, want)
		}
	})

	t.Run("early_break", func(t *testing.T) {
		// Stopping a range loop early must end the iterator cleanly
		// (a yield after false panics).
		for name, seq := range map[string]func() int{
			"ReadStream":         func() int { return breakAfter(s.ReadStream(ctx, "r", 0, 0), 2) },
			"ReadStreamBackward": func() int { return breakAfter(s.ReadStreamBackward(ctx, "r", 0, 0), 2) },
			"ReadAll":            func() int { return breakAfter(s.ReadAll(ctx, 0, 0), 3) },
		} {
			if n := seq(); n != 0 {
				t.Errorf("%s: %d errors before the break", name, n)
			}
		}
		// The store still works afterwards (no connection or lock kept).
		if v := streamVersion(t, s, "r"); v != 5 {
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

func TestEmptyStore(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		if h := head(t, s); h != 0 {
			t.Errorf("Head() = %d on an empty store, want 0", h)
		}
		if all := mustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0)); len(all) != 0 {
			t.Errorf("ReadAll() = %s on an empty store, want nothing", places(all))
		}
		if v := streamVersion(t, s, "s"); v != 0 {
			t.Errorf("StreamVersion(s) = %d on an empty store, want 0", v)
		}
	})
}

func TestRecordedFields(t *testing.T) {
	t.Parallel()
	clock := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 2*60*60))
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		var mu sync.Mutex
		generated := map[uuid.UUID]bool{}
		_, s := setup(t, kind, eventstore.Options{
			Now: func() time.Time { return clock },
			NewID: func() uuid.UUID {
				id := uuid.New()
				mu.Lock()
				generated[id] = true
				mu.Unlock()
				return id
			},
		})
		ctx := t.Context()
		meta := event.WithMetadata(map[string]string{"user": "ann", "ip": "10.0.0.1"})
		more := event.WithMetadata(map[string]string{"ip": "10.0.0.2", "trace": "t-1"})
		got := mustAppend(t, s, "acct-1", event.NoStream, []any{Opened{Owner: "ann"}, Deposited{Amount: 42}},
			meta, more, event.WithCausationID("cmd-7"), event.WithCorrelationID("conv-3"))
		plain := mustAppend(t, s, "acct-1", event.Exact(2), []any{Note{Text: "plain"}})

		wantMeta := map[string]string{"user": "ann", "ip": "10.0.0.2", "trace": "t-1"}
		truncated := clock.UTC().Truncate(time.Microsecond)
		rounded := clock.UTC().Round(time.Microsecond)
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
		if got[0].ID == got[1].ID {
			t.Errorf("two events got the same ID %v", got[0].ID)
		}
		for i, e := range got {
			if !equalMaps(e.Metadata, wantMeta) || e.CausationID != "cmd-7" || e.CorrelationID != "conv-3" {
				t.Errorf("event %d: Metadata %q, CausationID %q, CorrelationID %q; want %q, %q, %q",
					i, e.Metadata, e.CausationID, e.CorrelationID, wantMeta, "cmd-7", "conv-3")
			}
		}
		if want := []any{Opened{Owner: "ann"}, Deposited{Amount: 42}}; got[0].Data != want[0] || got[1].Data != want[1] {
			t.Errorf("Append returned data %v, %v; want %v", got[0].Data, got[1].Data, want)
		}
		if got[0].Type != typeOpened || got[1].Type != typeDeposited {
			t.Errorf("Append returned types %q, %q; want %q, %q", got[0].Type, got[1].Type, typeOpened, typeDeposited)
		}
		if p := plain[0]; p.Metadata != nil || p.CausationID != "" || p.CorrelationID != "" {
			t.Errorf("event without options: Metadata %#v, CausationID %q, CorrelationID %q; want nil, empty, empty",
				p.Metadata, p.CausationID, p.CorrelationID)
		}

		want := append(got, plain...)
		read := mustCollect(t, "ReadStream", s.ReadStream(ctx, "acct-1", 0, 0))
		checkEvents(t, "ReadStream(acct-1)", read, want)
		if len(read) == 3 && read[2].Metadata != nil {
			t.Errorf("ReadStream: event without metadata has Metadata %#v, want nil", read[2].Metadata)
		}
		checkEvents(t, "ReadAll", mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0)), want)
		back := mustCollect(t, "ReadStreamBackward", s.ReadStreamBackward(ctx, "acct-1", 0, 0))
		checkEvents(t, "ReadStreamBackward(acct-1)", back, []event.Event{want[2], want[1], want[0]})
	})
}

// Account v1 stored a full name; v2 splits it.
type AccountV1 struct {
	Name string `json:"name"`
}

type AccountV2 struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

func TestUpcastOldEvents(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		ctx := t.Context()

		reg1 := newRegistry()
		event.MustRegister[AccountV1](reg1, "test.account")
		old := newStore(t, db.Gorm, reg1, eventstore.Options{})
		migrate(t, old)
		written := mustAppend(t, old, "acc", event.NoStream, []any{AccountV1{Name: "Ann Lee"}, Note{Text: "n"}})

		reg2 := newRegistry()
		if err := event.RegisterVersion[AccountV2](reg2, "test.account", 2); err != nil {
			t.Fatal(err)
		}
		if err := reg2.AddUpcaster("test.account", 1, func(b []byte) ([]byte, error) {
			var v1 AccountV1
			if err := json.Unmarshal(b, &v1); err != nil {
				return nil, err
			}
			first, last, _ := strings.Cut(v1.Name, " ")
			return json.Marshal(AccountV2{First: first, Last: last})
		}); err != nil {
			t.Fatal(err)
		}
		cur := newStore(t, db.Gorm, reg2, eventstore.Options{})
		fresh := mustAppend(t, cur, "acc", event.Exact(2), []any{AccountV2{First: "Bo", Last: "Yu"}})

		want := []event.Event{written[0], written[1], fresh[0]}
		want[0].Data = AccountV2{First: "Ann", Last: "Lee"}
		checkEvents(t, "ReadStream with the v2 registry", mustCollect(t, "ReadStream", cur.ReadStream(ctx, "acc", 0, 0)), want)
		checkEvents(t, "ReadAll with the v2 registry", mustCollect(t, "ReadAll", cur.ReadAll(ctx, 0, 0)), want)
		e, err := cur.ReadEvent(ctx, "acc", 1)
		if err != nil {
			t.Fatalf("ReadEvent(acc, 1) = %v", err)
		}
		checkEvents(t, "ReadEvent(acc, 1)", []event.Event{e}, want[:1])

		// The v1 program cannot read what v2 wrote: a decode error, not
		// a silent misread.
		_, err = old.ReadEvent(ctx, "acc", 3)
		var de *event.DecodeError
		if !errors.As(err, &de) || de.Type != "test.account" || de.Position != fresh[0].Position {
			t.Errorf("v1 ReadEvent(acc, 3) = %v, want a *event.DecodeError for test.account at position %d", err, fresh[0].Position)
		}
	})
}

type Secret struct {
	Code string `json:"code"`
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		ctx := t.Context()
		reg := newRegistry()
		event.MustRegister[Secret](reg, "test.secret")
		w := newStore(t, db.Gorm, reg, eventstore.Options{})
		migrate(t, w)
		written := mustAppend(t, w, "x", event.NoStream, []any{Note{Text: "a"}, Secret{Code: "s"}, Note{Text: "b"}})
		bad := written[1]

		r := newStore(t, db.Gorm, newRegistry(), eventstore.Options{})
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

		t.Run("unknown_type", func(t *testing.T) {
			_, err := r.ReadEvent(ctx, "x", 2)
			checkDecodeError(t, "ReadEvent(x, 2)", err, "test.secret", bad)
			if !errors.Is(err, event.ErrUnknownType) {
				t.Errorf("ReadEvent(x, 2) = %v, want it to match ErrUnknownType", err)
			}
			if e, err := r.ReadEvent(ctx, "x", 1); err != nil || e.ID != written[0].ID {
				t.Errorf("ReadEvent(x, 1) = %s, %v; want the first event", places([]event.Event{e}), err)
			}

			got, err := collect(r.ReadStream(ctx, "x", 0, 0))
			checkEvents(t, "ReadStream(x) before the error", got, written[:1])
			checkDecodeError(t, "ReadStream(x)", err, "test.secret", bad)

			got, err = collect(r.ReadStreamBackward(ctx, "x", 0, 0))
			checkEvents(t, "ReadStreamBackward(x) before the error", got, written[2:3])
			checkDecodeError(t, "ReadStreamBackward(x)", err, "test.secret", bad)

			got, err = collect(r.ReadAll(ctx, 0, 0))
			checkEvents(t, "ReadAll before the error", got, written[:1])
			checkDecodeError(t, "ReadAll", err, "test.secret", bad)

			// A type filter that leaves the unknown type out reads on.
			got, err = collect(r.ReadAll(ctx, 0, 0, typeNote))
			if err != nil {
				t.Errorf("ReadAll(types %q) = %v, want nil", typeNote, err)
			}
			checkEvents(t, "ReadAll(notes)", got, []event.Event{written[0], written[2]})

			// A subscription stops at the event it cannot decode.
			f := follow(ctx, r, 0)
			select {
			case <-f.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("Subscribe went on past an undecodable event")
			}
			f.cancel()
			checkEvents(t, "Subscribe before the error", f.got, written[:1])
			checkDecodeError(t, "Subscribe", f.err, "test.secret", bad)
		})

		t.Run("data_not_fitting_the_type", func(t *testing.T) {
			type NoteAsNumber struct {
				Text int `json:"text"`
			}
			reg := event.NewRegistry(event.RegistryOptions{})
			event.MustRegister[NoteAsNumber](reg, typeNote)
			event.MustRegister[Secret](reg, "test.secret")
			r := newStore(t, db.Gorm, reg, eventstore.Options{})
			_, err := r.ReadEvent(ctx, "x", 3)
			checkDecodeError(t, "ReadEvent(x, 3)", err, typeNote, written[2])
		})
	})
}
