package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// testDeletion checks DeleteStream: its expected versions, what a deleted
// stream answers, and appends racing a deletion.
func testDeletion(t *testing.T, s *suite) {
	st := s.database(t).migrated(t)
	ctx := t.Context()
	three := []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}}

	t.Run("not_found_for_a_missing_stream", func(t *testing.T) {
		for _, exp := range []event.ExpectedVersion{event.Any, event.StreamExists} {
			if err := st.DeleteStream(ctx, "never", exp); !errors.Is(err, event.ErrStreamNotFound) {
				t.Errorf("DeleteStream(never, %v) = %v, want ErrStreamNotFound", exp, err)
			}
		}
		// The failed deletion did not mark the stream deleted.
		testkit.MustAppend(t, st, "never", event.NoStream, []any{testkit.Noted{}})
	})

	t.Run("version_conflict_keeps_the_stream", func(t *testing.T) {
		kept := testkit.MustAppend(t, st, "kept", event.NoStream, three)
		for _, exp := range []event.ExpectedVersion{event.Exact(2), event.Exact(4), event.NoStream} {
			testkit.CheckConflict(t, "DeleteStream", st.DeleteStream(ctx, "kept", exp), "kept", exp, 3)
		}
		testkit.CheckEvents(t, "ReadStream(kept)", testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, "kept", 0, 0)), kept)
		testkit.MustAppend(t, st, "kept", event.Exact(3), []any{testkit.Noted{}})
	})

	for _, exp := range []event.ExpectedVersion{event.Any, event.StreamExists, event.Exact(3)} {
		t.Run(fmt.Sprintf("deletes_with_%v", exp), func(t *testing.T) {
			stream := fmt.Sprintf("del-%v", exp)
			other := testkit.MustAppend(t, st, stream+"-neighbour", event.NoStream, []any{testkit.Noted{Text: "stays"}})
			gone := testkit.MustAppend(t, st, stream, event.NoStream, three)
			if err := st.DeleteStream(ctx, stream, exp); err != nil {
				t.Fatalf("DeleteStream(%q, %v) = %v, want nil", stream, exp, err)
			}
			checkDeleted(t, st, stream)
			testkit.CheckEvents(t, "ReadStream(neighbour)", testkit.MustCollect(t, "ReadStream", st.ReadStream(ctx, stream+"-neighbour", 0, 0)), other)
			for e, err := range st.ReadAll(ctx, 0, 0) {
				if err != nil {
					t.Fatalf("ReadAll: %v", err)
				}
				for _, g := range gone {
					if e.ID == g.ID {
						t.Errorf("ReadAll yields %s of deleted stream %q", testkit.Places([]event.Event{e}), stream)
					}
				}
			}
		})
	}

	t.Run("removes_the_snapshot", func(t *testing.T) {
		testkit.MustAppend(t, st, "snapped", event.NoStream, three)
		if err := st.SaveSnapshot(ctx, event.Snapshot{StreamID: "snapped", Version: 3, SchemaVersion: 1, Data: []byte("{}")}); err != nil {
			t.Fatalf("SaveSnapshot(snapped) = %v", err)
		}
		if err := st.DeleteStream(ctx, "snapped", event.Exact(3)); err != nil {
			t.Fatalf("DeleteStream(snapped) = %v", err)
		}
		if _, ok, err := st.LoadSnapshot(ctx, "snapped"); ok || err != nil {
			t.Errorf("LoadSnapshot(snapped) after deletion = %v, %v; want no snapshot (the stream's data must be gone)", ok, err)
		}
	})

	t.Run("positions_of_the_deleted_newest_stream_are_not_reused", func(t *testing.T) {
		testkit.MustAppend(t, st, "before-newest", event.NoStream, []any{testkit.Noted{}})
		newest := testkit.MustAppend(t, st, "newest", event.NoStream, three)
		if err := st.DeleteStream(ctx, "newest", event.Any); err != nil {
			t.Fatalf("DeleteStream(newest) = %v", err)
		}
		if h := testkit.Head(t, st); h >= newest[0].Position {
			t.Errorf("Head() = %d after deleting the newest stream (positions %d..%d), want the newest remaining event's position",
				h, newest[0].Position, newest[2].Position)
		}
		after := testkit.MustAppend(t, st, "after-newest", event.NoStream, []any{testkit.Noted{}, testkit.Noted{}})
		if after[0].Position <= newest[2].Position {
			t.Errorf("Append after deleting the newest stream got position %d, want above %d (positions must never be reused)",
				after[0].Position, newest[2].Position)
		}
	})

	t.Run("appends_racing_a_deletion_land_before_it_or_fail", func(t *testing.T) { testDeleteRacingAppends(t, s) })
}

// checkDeleted checks every read and write of a deleted stream.
func checkDeleted(t *testing.T, st *eventstore.Store, stream string) {
	t.Helper()
	ctx := t.Context()
	if _, err := st.ReadEvent(ctx, stream, 1); !errors.Is(err, event.ErrStreamDeleted) {
		t.Errorf("ReadEvent(%q, 1) = %v, want ErrStreamDeleted", stream, err)
	}
	if _, err := st.StreamVersion(ctx, stream); !errors.Is(err, event.ErrStreamDeleted) {
		t.Errorf("StreamVersion(%q) = %v, want ErrStreamDeleted", stream, err)
	}
	for name, seq := range map[string]func(yield func(event.Event, error) bool){
		"ReadStream":         st.ReadStream(ctx, stream, 0, 0),
		"ReadStreamBackward": st.ReadStreamBackward(ctx, stream, 0, 0),
	} {
		var items []error
		for e, err := range seq {
			if err == nil {
				t.Errorf("%s(%q) yields %s, want only ErrStreamDeleted", name, stream, testkit.Places([]event.Event{e}))
			}
			items = append(items, err)
		}
		if len(items) != 1 || !errors.Is(items[0], event.ErrStreamDeleted) {
			t.Errorf("%s(%q) yields %v, want exactly one ErrStreamDeleted", name, stream, items)
		}
	}
	for _, exp := range []event.ExpectedVersion{event.Any, event.NoStream, event.StreamExists, event.Exact(3)} {
		if _, err := st.Append(ctx, stream, exp, []any{testkit.Noted{}}); !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("Append(%q, %v) after deletion = %v, want ErrStreamDeleted", stream, exp, err)
		}
	}
	if err := st.DeleteStream(ctx, stream, event.Any); !errors.Is(err, event.ErrStreamDeleted) && !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("DeleteStream(%q) again = %v, want ErrStreamDeleted or ErrStreamNotFound", stream, err)
	}
}

// testDeleteRacingAppends: appends, from two stores, racing a deletion
// of their stream either land before it (and are deleted with the stream)
// or fail with ErrStreamDeleted; nothing of the stream survives.
func testDeleteRacingAppends(t *testing.T, s *suite) {
	db := s.database(t)
	st := db.migrated(t)
	stores := []*eventstore.Store{st, db.store(t)}
	ctx := t.Context()
	for round := range 3 {
		stream := fmt.Sprintf("doomed-%d", round)
		keep := testkit.MustAppend(t, st, fmt.Sprintf("kept-%d", round), event.NoStream, []any{testkit.Noted{}})
		testkit.MustAppend(t, st, stream, event.NoStream, []any{testkit.Noted{}})
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted []event.Event
			deleted  = make(chan struct{})
		)
		for w := range 4 {
			wg.Go(func() {
				store := stores[w%len(stores)]
				for i := 0; ; i++ {
					afterDelete := false
					select {
					case <-deleted:
						afterDelete = true
					default:
					}
					got, err := store.Append(ctx, stream, event.Any, []any{testkit.Tick{Writer: w, Seq: i}})
					if errors.Is(err, event.ErrStreamDeleted) {
						return
					}
					if err != nil {
						t.Errorf("Append(%q) = %v, want nil or ErrStreamDeleted", stream, err)
						return
					}
					if afterDelete {
						t.Errorf("Append(%q) started after DeleteStream returned and succeeded", stream)
						return
					}
					mu.Lock()
					accepted = append(accepted, got...)
					mu.Unlock()
				}
			})
		}
		for testkit.Head(t, st) < keep[0].Position+20 {
			time.Sleep(time.Millisecond)
		}
		if err := stores[round%2].DeleteStream(ctx, stream, event.Any); err != nil {
			t.Fatalf("DeleteStream(%q) = %v", stream, err)
		}
		close(deleted)
		wg.Wait()
		for e, err := range st.ReadAll(ctx, 0, 0) {
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if e.StreamID == stream {
				t.Errorf("ReadAll yields %s of deleted stream %q", testkit.Places([]event.Event{e}), stream)
			}
		}
		if _, err := st.StreamVersion(ctx, stream); !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("StreamVersion(%q) = %v, want ErrStreamDeleted", stream, err)
		}
		t.Logf("round %d: %d appends before the deletion", round, len(accepted))
	}
}

// testSnapshots checks that the newest snapshot of a stream is kept, in
// any order and under concurrent saves, with its bytes as given.
func testSnapshots(t *testing.T, s *suite) {
	clock := time.Date(2030, 1, 2, 3, 4, 5, 6007008, time.FixedZone("X", 3600))
	st := s.database(t).migrated(t, func(o *eventstore.Options) { o.Now = func() time.Time { return clock } })
	ctx := t.Context()
	load := func(t *testing.T, stream string) (event.Snapshot, bool) {
		t.Helper()
		snap, ok, err := st.LoadSnapshot(ctx, stream)
		if err != nil {
			t.Fatalf("LoadSnapshot(%q) = %v, want nil", stream, err)
		}
		return snap, ok
	}
	check := func(t *testing.T, stream string, want event.Snapshot) {
		t.Helper()
		got, ok := load(t, stream)
		if !ok || got.StreamID != want.StreamID || got.Version != want.Version ||
			got.SchemaVersion != want.SchemaVersion || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("LoadSnapshot(%q) = {%q v%d schema %d %q}, %v; want {%q v%d schema %d %q}, true",
				stream, got.StreamID, got.Version, got.SchemaVersion, got.Data, ok,
				want.StreamID, want.Version, want.SchemaVersion, want.Data)
		}
	}
	save := func(t *testing.T, snap event.Snapshot) {
		t.Helper()
		if err := st.SaveSnapshot(ctx, snap); err != nil {
			t.Fatalf("SaveSnapshot(%q v%d) = %v, want nil", snap.StreamID, snap.Version, err)
		}
	}

	t.Run("none_before_the_first_save", func(t *testing.T) {
		if _, ok := load(t, "acct"); ok {
			t.Errorf("LoadSnapshot(acct) found a snapshot before any was saved")
		}
	})
	v8 := event.Snapshot{StreamID: "acct", Version: 8, SchemaVersion: 2, Data: []byte{0, 1, 2, 0xff}}
	t.Run("a_newer_snapshot_replaces_an_older_one_and_not_the_reverse", func(t *testing.T) {
		v5 := event.Snapshot{StreamID: "acct", Version: 5, SchemaVersion: 1, Data: []byte(`{"balance":5}`)}
		save(t, v5)
		check(t, "acct", v5)
		save(t, event.Snapshot{StreamID: "acct", Version: 3, SchemaVersion: 1, Data: []byte(`{"balance":3}`)})
		check(t, "acct", v5)
		save(t, v8)
		check(t, "acct", v8)
	})
	t.Run("streams_have_their_own_snapshots", func(t *testing.T) {
		other := event.Snapshot{StreamID: "other", Version: 1, SchemaVersion: 1, Data: []byte(`{}`)}
		save(t, other)
		check(t, "other", other)
		check(t, "acct", v8)
	})
	t.Run("concurrent_saves_keep_the_highest_version", func(t *testing.T) {
		var wg sync.WaitGroup
		for v := range 8 {
			wg.Go(func() {
				snap := event.Snapshot{StreamID: "race", Version: int64(v + 1), SchemaVersion: 1, Data: fmt.Appendf(nil, "%d", v+1)}
				if err := st.SaveSnapshot(ctx, snap); err != nil {
					t.Errorf("SaveSnapshot(race v%d) = %v, want nil", v+1, err)
				}
			})
		}
		wg.Wait()
		check(t, "race", event.Snapshot{StreamID: "race", Version: 8, SchemaVersion: 1, Data: []byte("8")})
	})
	t.Run("RecordedAt_is_the_clock_or_the_given_time_in_UTC_microseconds", func(t *testing.T) {
		save(t, event.Snapshot{StreamID: "clock", Version: 1, SchemaVersion: 1, Data: []byte("{}")})
		got, _ := load(t, "clock")
		if want := clock.UTC().Truncate(time.Microsecond); !got.RecordedAt.Equal(want) || got.RecordedAt.Location() != time.UTC {
			t.Errorf("LoadSnapshot(clock).RecordedAt = %v, want %v (from Options.Now)", got.RecordedAt, want)
		}
		given := time.Date(2029, 5, 6, 7, 8, 9, 10011012, time.UTC)
		save(t, event.Snapshot{StreamID: "given", Version: 1, SchemaVersion: 1, Data: []byte("{}"), RecordedAt: given})
		if got, _ := load(t, "given"); !got.RecordedAt.Equal(given.Truncate(time.Microsecond)) || got.RecordedAt.Location() != time.UTC {
			t.Errorf("LoadSnapshot(given).RecordedAt = %v, want %v", got.RecordedAt, given.Truncate(time.Microsecond))
		}
	})
}

// testReadFromSnapshot checks ReadStreamFromSnapshot: the snapshot of the
// asked schema version with the events after it, all events when there is
// none, every page of a long remainder, and a deleted stream.
func testReadFromSnapshot(t *testing.T, s *suite) {
	db := s.database(t)
	st := db.migrated(t)
	paged := db.store(t, pageSize(2))
	ctx := t.Context()
	var evs []event.Event
	for i := range 7 {
		evs = append(evs, testkit.MustAppend(t, st, "snap", event.Exact(int64(i)), []any{testkit.Deposited{Amount: i + 1}})...)
	}
	testkit.MustAppend(t, st, "other", event.NoStream, []any{testkit.Noted{Text: "o"}})

	read := func(t *testing.T, st *eventstore.Store, stream string, schema int, wantFound bool, wantVersion int64, want []event.Event) {
		t.Helper()
		snap, found, events, err := st.ReadStreamFromSnapshot(ctx, stream, schema)
		if err != nil {
			t.Fatalf("ReadStreamFromSnapshot(%q, %d) = %v, want nil", stream, schema, err)
		}
		if found != wantFound || snap.Version != wantVersion || (found && (snap.StreamID != stream || snap.SchemaVersion != schema)) {
			t.Errorf("ReadStreamFromSnapshot(%q, %d) = snapshot {%q v%d schema %d}, found %v; want v%d, found %v",
				stream, schema, snap.StreamID, snap.Version, snap.SchemaVersion, found, wantVersion, wantFound)
		}
		got := testkit.MustCollect(t, "ReadStreamFromSnapshot", events)
		testkit.CheckEvents(t, fmt.Sprintf("events after ReadStreamFromSnapshot(%q, %d)", stream, schema), got, want)
	}
	stores := map[string]*eventstore.Store{"default_pages": st, "pages_of_2": paged}
	for name, st := range stores {
		t.Run("no_snapshot_reads_every_event/"+name, func(t *testing.T) {
			read(t, st, "snap", 1, false, 0, evs)
			read(t, st, "missing", 1, false, 0, nil)
		})
	}
	if err := st.SaveSnapshot(ctx, event.Snapshot{StreamID: "snap", Version: 2, SchemaVersion: 3, Data: []byte("at 2")}); err != nil {
		t.Fatal(err)
	}
	for name, st := range stores {
		t.Run("with_a_snapshot/"+name, func(t *testing.T) {
			t.Run("the_snapshot_and_every_event_after_it", func(t *testing.T) {
				read(t, st, "snap", 3, true, 2, evs[2:])
				snap, _, _, _ := st.ReadStreamFromSnapshot(ctx, "snap", 3)
				if string(snap.Data) != "at 2" || snap.RecordedAt.IsZero() {
					t.Errorf("the snapshot's data %q recorded at %v, want %q and a time", snap.Data, snap.RecordedAt, "at 2")
				}
			})
			t.Run("another_schema_version_is_no_snapshot", func(t *testing.T) {
				read(t, st, "snap", 1, false, 0, evs)
			})
			t.Run("an_iteration_stopped_early_reads_no_more", func(t *testing.T) {
				_, _, events, err := st.ReadStreamFromSnapshot(ctx, "snap", 3)
				if err != nil {
					t.Fatal(err)
				}
				for e, err := range events {
					if err != nil || e.Version != 3 {
						t.Errorf("first event = v%d, %v; want v3", e.Version, err)
					}
					break
				}
			})
		})
	}
	if err := st.SaveSnapshot(ctx, event.Snapshot{StreamID: "snap", Version: 7, SchemaVersion: 3, Data: []byte("at 7")}); err != nil {
		t.Fatal(err)
	}
	t.Run("a_snapshot_at_the_last_version_has_nothing_after_it", func(t *testing.T) {
		read(t, paged, "snap", 3, true, 7, nil)
	})
	t.Run("a_deleted_stream", func(t *testing.T) {
		if err := st.DeleteStream(ctx, "snap", event.Any); err != nil {
			t.Fatal(err)
		}
		snap, found, events, err := st.ReadStreamFromSnapshot(ctx, "snap", 3)
		if err != nil || found || snap.Version != 0 {
			t.Fatalf("ReadStreamFromSnapshot(deleted) = v%d, found %v, %v; want no snapshot and nil", snap.Version, found, err)
		}
		got, err := testkit.Collect(events)
		if len(got) != 0 || !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("events of a deleted stream = %s, %v; want none and ErrStreamDeleted", testkit.Places(got), err)
		}
	})
	t.Run("an_invalid_stream_ID", func(t *testing.T) {
		if _, _, _, err := st.ReadStreamFromSnapshot(ctx, "", 1); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("ReadStreamFromSnapshot(\"\") = %v, want ErrInvalidArgument", err)
		}
	})
}
