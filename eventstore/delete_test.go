package eventstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

func TestDeleteStream(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		three := []any{Opened{Owner: "ann"}, Deposited{Amount: 1}, Deposited{Amount: 2}}

		t.Run("not_found_for_a_missing_stream", func(t *testing.T) {
			for _, exp := range []event.ExpectedVersion{event.Any, event.StreamExists} {
				if err := s.DeleteStream(ctx, "never", exp); !errors.Is(err, event.ErrStreamNotFound) {
					t.Errorf("DeleteStream(never, %v) = %v, want ErrStreamNotFound", exp, err)
				}
			}
			// The failed deletion did not mark the stream deleted.
			mustAppend(t, s, "never", event.NoStream, []any{Note{}})
		})

		t.Run("version_conflict_keeps_the_stream", func(t *testing.T) {
			kept := mustAppend(t, s, "kept", event.NoStream, three)
			for _, exp := range []event.ExpectedVersion{event.Exact(2), event.Exact(4), event.NoStream} {
				err := s.DeleteStream(ctx, "kept", exp)
				if !errors.Is(err, event.ErrVersionConflict) {
					t.Errorf("DeleteStream(kept, %v) = %v, want ErrVersionConflict", exp, err)
					continue
				}
				var vc *event.VersionConflictError
				if !errors.As(err, &vc) || vc.StreamID != "kept" || vc.Expected != exp || vc.Actual != 3 {
					t.Errorf("DeleteStream(kept, %v) = %v, want a VersionConflictError{kept, %v, 3}", exp, err, exp)
				}
			}
			checkEvents(t, "ReadStream(kept)", mustCollect(t, "ReadStream", s.ReadStream(ctx, "kept", 0, 0)), kept)
			mustAppend(t, s, "kept", event.Exact(3), []any{Note{}})
		})

		for _, exp := range []event.ExpectedVersion{event.Any, event.StreamExists, event.Exact(3)} {
			t.Run(fmt.Sprintf("deletes_with_%v", exp), func(t *testing.T) {
				stream := fmt.Sprintf("del-%v", exp)
				other := mustAppend(t, s, stream+"-neighbour", event.NoStream, []any{Note{Text: "stays"}})
				gone := mustAppend(t, s, stream, event.NoStream, three)
				if err := s.DeleteStream(ctx, stream, exp); err != nil {
					t.Fatalf("DeleteStream(%q, %v) = %v, want nil", stream, exp, err)
				}
				checkDeleted(t, s, stream)
				checkEvents(t, "ReadStream(neighbour)", mustCollect(t, "ReadStream", s.ReadStream(ctx, stream+"-neighbour", 0, 0)), other)
				for e, err := range s.ReadAll(ctx, 0, 0) {
					if err != nil {
						t.Fatalf("ReadAll: %v", err)
					}
					for _, g := range gone {
						if e.ID == g.ID {
							t.Errorf("ReadAll yields %s of deleted stream %q", places([]event.Event{e}), stream)
						}
					}
				}
			})
		}

		t.Run("removes_the_snapshot", func(t *testing.T) {
			mustAppend(t, s, "snapped", event.NoStream, three)
			if err := s.SaveSnapshot(ctx, event.Snapshot{StreamID: "snapped", Version: 3, SchemaVersion: 1, Data: []byte("{}")}); err != nil {
				t.Fatalf("SaveSnapshot(snapped) = %v", err)
			}
			if err := s.DeleteStream(ctx, "snapped", event.Exact(3)); err != nil {
				t.Fatalf("DeleteStream(snapped) = %v", err)
			}
			if _, ok, err := s.LoadSnapshot(ctx, "snapped"); ok || err != nil {
				t.Errorf("LoadSnapshot(snapped) after deletion = %v, %v; want no snapshot (the stream's data must be gone)", ok, err)
			}
		})

		t.Run("positions_of_the_deleted_newest_stream_are_not_reused", func(t *testing.T) {
			mustAppend(t, s, "before-newest", event.NoStream, []any{Note{}})
			newest := mustAppend(t, s, "newest", event.NoStream, three)
			if err := s.DeleteStream(ctx, "newest", event.Any); err != nil {
				t.Fatalf("DeleteStream(newest) = %v", err)
			}
			if h := head(t, s); h >= newest[0].Position {
				t.Errorf("Head() = %d after deleting the newest stream (positions %d..%d), want the newest remaining event's position",
					h, newest[0].Position, newest[2].Position)
			}
			after := mustAppend(t, s, "after-newest", event.NoStream, []any{Note{}, Note{}})
			if after[0].Position <= newest[2].Position {
				t.Errorf("Append after deleting the newest stream got position %d, want above %d (positions must never be reused)",
					after[0].Position, newest[2].Position)
			}
		})
	})
}

// checkDeleted checks every read and write of a deleted stream.
func checkDeleted(t *testing.T, s *eventstore.Store, stream string) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.ReadEvent(ctx, stream, 1); !errors.Is(err, event.ErrStreamDeleted) {
		t.Errorf("ReadEvent(%q, 1) = %v, want ErrStreamDeleted", stream, err)
	}
	if _, err := s.StreamVersion(ctx, stream); !errors.Is(err, event.ErrStreamDeleted) {
		t.Errorf("StreamVersion(%q) = %v, want ErrStreamDeleted", stream, err)
	}
	for name, seq := range map[string]func(yield func(event.Event, error) bool){
		"ReadStream":         s.ReadStream(ctx, stream, 0, 0),
		"ReadStreamBackward": s.ReadStreamBackward(ctx, stream, 0, 0),
	} {
		var items []error
		for e, err := range seq {
			if err == nil {
				t.Errorf("%s(%q) yields %s, want only ErrStreamDeleted", name, stream, places([]event.Event{e}))
			}
			items = append(items, err)
		}
		if len(items) != 1 || !errors.Is(items[0], event.ErrStreamDeleted) {
			t.Errorf("%s(%q) yields %v, want exactly one ErrStreamDeleted", name, stream, items)
		}
	}
	for _, exp := range []event.ExpectedVersion{event.Any, event.NoStream, event.StreamExists, event.Exact(3)} {
		if _, err := s.Append(ctx, stream, exp, []any{Note{}}); !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("Append(%q, %v) after deletion = %v, want ErrStreamDeleted", stream, exp, err)
		}
	}
	if err := s.DeleteStream(ctx, stream, event.Any); !errors.Is(err, event.ErrStreamDeleted) && !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("DeleteStream(%q) again = %v, want ErrStreamDeleted or ErrStreamNotFound", stream, err)
	}
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		clock := time.Date(2030, 1, 2, 3, 4, 5, 6007008, time.FixedZone("X", 3600))
		_, s := setup(t, kind, eventstore.Options{Now: func() time.Time { return clock }})
		ctx := t.Context()
		load := func(stream string) (event.Snapshot, bool) {
			t.Helper()
			snap, ok, err := s.LoadSnapshot(ctx, stream)
			if err != nil {
				t.Fatalf("LoadSnapshot(%q) = %v, want nil", stream, err)
			}
			return snap, ok
		}
		check := func(stream string, want event.Snapshot) {
			t.Helper()
			got, ok := load(stream)
			if !ok || got.StreamID != want.StreamID || got.Version != want.Version ||
				got.SchemaVersion != want.SchemaVersion || !bytes.Equal(got.Data, want.Data) {
				t.Errorf("LoadSnapshot(%q) = {%q v%d schema %d %q}, %v; want {%q v%d schema %d %q}, true",
					stream, got.StreamID, got.Version, got.SchemaVersion, got.Data, ok,
					want.StreamID, want.Version, want.SchemaVersion, want.Data)
			}
		}
		save := func(snap event.Snapshot) {
			t.Helper()
			if err := s.SaveSnapshot(ctx, snap); err != nil {
				t.Fatalf("SaveSnapshot(%q v%d) = %v, want nil", snap.StreamID, snap.Version, err)
			}
		}

		if _, ok := load("acct"); ok {
			t.Errorf("LoadSnapshot(acct) found a snapshot before any was saved")
		}
		v5 := event.Snapshot{StreamID: "acct", Version: 5, SchemaVersion: 1, Data: []byte(`{"balance":5}`)}
		save(v5)
		check("acct", v5)

		save(event.Snapshot{StreamID: "acct", Version: 3, SchemaVersion: 1, Data: []byte(`{"balance":3}`)})
		check("acct", v5)

		v8 := event.Snapshot{StreamID: "acct", Version: 8, SchemaVersion: 2, Data: []byte{0, 1, 2, 0xff}}
		save(v8)
		check("acct", v8)

		other := event.Snapshot{StreamID: "other", Version: 1, SchemaVersion: 1, Data: []byte(`{}`)}
		save(other)
		check("other", other)
		check("acct", v8)

		// Concurrent saves keep the highest version.
		var wg sync.WaitGroup
		for v := range 8 {
			wg.Go(func() {
				snap := event.Snapshot{StreamID: "race", Version: int64(v + 1), SchemaVersion: 1, Data: fmt.Appendf(nil, "%d", v+1)}
				if err := s.SaveSnapshot(ctx, snap); err != nil {
					t.Errorf("SaveSnapshot(race v%d) = %v, want nil", v+1, err)
				}
			})
		}
		wg.Wait()
		check("race", event.Snapshot{StreamID: "race", Version: 8, SchemaVersion: 1, Data: []byte("8")})

		// RecordedAt: the clock's time when not given, UTC at microsecond
		// precision either way.
		got, _ := load("acct")
		if want := clock.UTC().Truncate(time.Microsecond); !got.RecordedAt.Equal(want) || got.RecordedAt.Location() != time.UTC {
			t.Errorf("LoadSnapshot(acct).RecordedAt = %v, want %v (from Options.Now)", got.RecordedAt, want)
		}
		given := time.Date(2029, 5, 6, 7, 8, 9, 10011012, time.UTC)
		save(event.Snapshot{StreamID: "given", Version: 1, SchemaVersion: 1, Data: []byte("{}"), RecordedAt: given})
		if got, _ := load("given"); !got.RecordedAt.Equal(given.Truncate(time.Microsecond)) {
			t.Errorf("LoadSnapshot(given).RecordedAt = %v, want %v", got.RecordedAt, given.Truncate(time.Microsecond))
		}
	})
}

// Appends racing a deletion of their stream either land before it (and
// are deleted with the stream) or fail with ErrStreamDeleted; nothing of
// the stream survives.
func TestDeleteStreamRacingAppends(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{})
		stores := []*eventstore.Store{s, newStore(t, openAgain(t, db), newRegistry(), eventstore.Options{})}
		ctx := t.Context()
		for round := range 3 {
			stream := fmt.Sprintf("doomed-%d", round)
			keep := mustAppend(t, s, fmt.Sprintf("kept-%d", round), event.NoStream, []any{Note{}})
			mustAppend(t, s, stream, event.NoStream, []any{Note{}})
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				accepted []event.Event
				deleted  = make(chan struct{})
			)
			for w := range 4 {
				wg.Go(func() {
					st := stores[w%len(stores)]
					for i := 0; ; i++ {
						afterDelete := false
						select {
						case <-deleted:
							afterDelete = true
						default:
						}
						got, err := st.Append(ctx, stream, event.Any, []any{Tick{Writer: w, Seq: i}})
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
			for head(t, s) < keep[0].Position+20 {
				time.Sleep(time.Millisecond)
			}
			if err := stores[round%2].DeleteStream(ctx, stream, event.Any); err != nil {
				t.Fatalf("DeleteStream(%q) = %v", stream, err)
			}
			close(deleted)
			wg.Wait()
			for e, err := range s.ReadAll(ctx, 0, 0) {
				if err != nil {
					t.Fatalf("ReadAll: %v", err)
				}
				if e.StreamID == stream {
					t.Errorf("ReadAll yields %s of deleted stream %q", places([]event.Event{e}), stream)
				}
			}
			if _, err := s.StreamVersion(ctx, stream); !errors.Is(err, event.ErrStreamDeleted) {
				t.Errorf("StreamVersion(%q) = %v, want ErrStreamDeleted", stream, err)
			}
			t.Logf("round %d: %d appends before the deletion", round, len(accepted))
		}
	})
}
