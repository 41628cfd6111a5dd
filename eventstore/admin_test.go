package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

func collectRaw(t *testing.T, seq func(func(eventstore.RawEvent, error) bool)) []eventstore.RawEvent {
	t.Helper()
	var out []eventstore.RawEvent
	for e, err := range seq {
		if err != nil {
			t.Fatalf("raw read: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func rawPositions(evs []eventstore.RawEvent) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.Position)
	}
	return out
}

func TestReadRaw(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		db, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t), PageSize: 2})
		a := testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}},
			event.WithCorrelationID("c-1"), event.WithMetadata(map[string]string{"k": "v"}))
		b := testkit.MustAppend(t, s, "acct-2", event.NoStream, []any{testkit.Opened{Owner: "bob"}})
		c := testkit.MustAppend(t, s, "acct-1", event.Exact(2), []any{testkit.Withdrawn{Amount: 1}}, event.WithCorrelationID("c-1"))

		// An event whose data no registry can decode any more, written
		// into the table directly.
		if err := db.Gorm.Exec("UPDATE cairn_events SET type = 'gone' WHERE position = ?", b[0].Position).Error; err != nil {
			t.Fatal(err)
		}
		all := collectRaw(t, s.ReadRaw(ctx, 0, 0, eventstore.RawFilter{}))
		want := []int64{a[0].Position, a[1].Position, b[0].Position, c[0].Position}
		if !slices.Equal(rawPositions(all), want) {
			t.Fatalf("ReadRaw(all) positions = %v, want %v", rawPositions(all), want)
		}
		first := all[0]
		if first.ID != a[0].ID || first.StreamID != "acct-1" || first.Version != 1 || first.Type != testkit.TypeOpened ||
			first.SchemaVersion != 1 || string(first.Data) != `{"owner":"ann"}` || string(first.Metadata) != `{"k":"v"}` ||
			first.CorrelationID != "c-1" || !first.RecordedAt.Equal(a[0].RecordedAt) {
			t.Errorf("ReadRaw first event = %+v, want %+v as stored", first, a[0])
		}
		if all[2].Type != "gone" || string(all[2].Data) != `{"owner":"bob"}` || all[2].Metadata != nil {
			t.Errorf("ReadRaw of an unknown type = %+v, want it as stored", all[2])
		}

		for _, tc := range []struct {
			name  string
			after int64
			limit int
			f     eventstore.RawFilter
			want  []int64
		}{
			{"after and limit", a[0].Position, 2, eventstore.RawFilter{}, []int64{a[1].Position, b[0].Position}},
			{"stream", 0, 0, eventstore.RawFilter{StreamID: "acct-1"}, []int64{a[0].Position, a[1].Position, c[0].Position}},
			{"types", 0, 0, eventstore.RawFilter{Types: []string{testkit.TypeWithdrawn, "gone"}}, []int64{b[0].Position, c[0].Position}},
			{"correlation", 0, 0, eventstore.RawFilter{CorrelationID: "c-1"}, []int64{a[0].Position, a[1].Position, c[0].Position}},
			{"correlation and type", 0, 0, eventstore.RawFilter{CorrelationID: "c-1", Types: []string{testkit.TypeDeposited}}, []int64{a[1].Position}},
		} {
			got := rawPositions(collectRaw(t, s.ReadRaw(ctx, tc.after, tc.limit, tc.f)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: ReadRaw positions = %v, want %v", tc.name, got, tc.want)
			}
		}
		for _, err := range s.ReadRaw(ctx, -1, 0, eventstore.RawFilter{}) {
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("ReadRaw(-1) = %v, want ErrInvalidArgument", err)
			}
		}
	})
}

func TestSubscribeRaw(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t), PageSize: 2, PollInterval: 20 * time.Millisecond})
		before := testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}, testkit.Deposited{Amount: 6}})
		// Another store (another process) appends: found by polling, or
		// by a notification on PostgreSQL.
		other := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{Logger: testdb.Logger(t)})

		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan eventstore.RawEvent, 10)
		done := make(chan error, 1)
		go func() {
			for e, err := range s.SubscribeRaw(ctx, before[0].Position, eventstore.RawFilter{Types: []string{testkit.TypeDeposited}}) {
				if err != nil {
					done <- err
					return
				}
				got <- e
			}
			done <- nil
		}()
		next := func() eventstore.RawEvent {
			select {
			case e := <-got:
				return e
			case <-time.After(30 * time.Second):
				t.Fatal("SubscribeRaw yielded nothing within 30s")
				return eventstore.RawEvent{}
			}
		}
		for _, want := range before[1:] {
			if e := next(); e.Position != want.Position {
				t.Fatalf("SubscribeRaw yielded position %d, want %d", e.Position, want.Position)
			}
		}
		testkit.MustAppend(t, other, "acct-1", event.Exact(3), []any{testkit.Withdrawn{Amount: 1}})
		live := testkit.MustAppend(t, other, "acct-2", event.NoStream, []any{testkit.Deposited{Amount: 7}})
		if e := next(); e.Position != live[0].Position || string(e.Data) != `{"amount":7}` {
			t.Fatalf("SubscribeRaw yielded %+v, want the live deposit at %d", e, live[0].Position)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("SubscribeRaw ended with %v, want context.Canceled", err)
		}
	})
}

func TestStreams(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		_, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t), PageSize: 2})
		for _, id := range []string{"todo-b", "TODO-x", "todo-a", "other", "todo-c", "todo_d"} {
			testkit.MustAppend(t, s, id, event.NoStream, []any{testkit.Opened{Owner: id}})
		}
		testkit.MustAppend(t, s, "todo-a", event.Exact(1), []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		if err := s.DeleteStream(ctx, "todo-c", event.Any); err != nil {
			t.Fatal(err)
		}
		list := func(prefix string, limit int) []eventstore.StreamInfo {
			var out []eventstore.StreamInfo
			for st, err := range s.Streams(ctx, prefix, limit) {
				if err != nil {
					t.Fatalf("Streams(%q, %d): %v", prefix, limit, err)
				}
				out = append(out, st)
			}
			return out
		}
		ids := func(l []eventstore.StreamInfo) []string {
			var out []string
			for _, st := range l {
				out = append(out, st.StreamID)
			}
			return out
		}
		if got := ids(list("todo-", 0)); !slices.Equal(got, []string{"todo-a", "todo-b"}) {
			t.Errorf("Streams(todo-) = %v, want todo-a, todo-b (case-sensitive, no deleted streams, _ is no wildcard)", got)
		}
		all := list("", 0)
		if len(all) != 5 {
			t.Errorf("Streams() = %v, want 5 streams", ids(all))
		}
		if got := ids(list("", 3)); len(got) != 3 || !slices.IsSorted(got) {
			t.Errorf("Streams(limit 3) = %v, want the first 3 in order", got)
		}
		a := list("todo-a", 0)
		if len(a) != 1 || a[0].Version != 3 || a[0].FirstRecordedAt.IsZero() || a[0].LastRecordedAt.Before(a[0].FirstRecordedAt) {
			t.Errorf("Streams(todo-a) = %+v, want version 3 with its first and last recorded times", a)
		}
	})
}

func TestMovePosition(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		_, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t)})
		if moved, err := s.MovePosition(ctx, "p", 3); err != nil || moved {
			t.Fatalf("MovePosition of a processor without a row = %v, %v; want false, nil", moved, err)
		}
		if _, _, err := s.LoadPosition(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		epoch, _, ok, err := s.AcquireLease(ctx, "p", "owner", time.Minute)
		if err != nil || !ok {
			t.Fatalf("AcquireLease = %v, %v", ok, err)
		}
		if moved, err := s.MovePosition(ctx, "p", 3); err != nil || !moved {
			t.Fatalf("MovePosition = %v, %v; want true, nil", moved, err)
		}
		pos, newEpoch, err := s.LoadPosition(ctx, "p")
		if err != nil || pos != 3 || newEpoch != epoch+1 {
			t.Errorf("after MovePosition: position %d, epoch %d (%v); want 3, %d", pos, newEpoch, err, epoch+1)
		}
		// The owner is fenced.
		if saved, err := s.SavePosition(ctx, "p", epoch, 3, 4); err != nil || saved {
			t.Errorf("SavePosition with the old epoch = %v, %v; want false (fenced)", saved, err)
		}
		if _, err := s.MovePosition(ctx, "p", -1); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("MovePosition(-1) = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestDropTables(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		db, app := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t)})
		testkit.MustAppend(t, app, "keep", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
		scratch := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{Logger: testdb.Logger(t), TablePrefix: "scratch_"})
		testkit.MustAppend(t, scratch, "s", event.NoStream, []any{testkit.Opened{Owner: "bob"}})
		if _, _, err := scratch.LoadPosition(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		if err := scratch.DropTables(ctx); err != nil {
			t.Fatalf("DropTables() = %v", err)
		}
		if err := scratch.DropTables(ctx); err != nil {
			t.Fatalf("DropTables() again = %v, want nil", err)
		}
		var tables []string
		q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'scratch%'"
		if kind == testdb.Postgres {
			q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'scratch%'"
		}
		if err := db.Gorm.Raw(q).Scan(&tables).Error; err != nil {
			t.Fatal(err)
		}
		if len(tables) != 0 {
			t.Errorf("tables left after DropTables: %v", tables)
		}
		if head, err := app.Head(ctx); err != nil || head != 1 {
			t.Errorf("the application's store after dropping the scratch tables: head %d, %v; want 1", head, err)
		}
	})
}
