package eventstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

func TestParkedEvents(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		clock := time.UnixMilli(1_700_000_000_000)
		_, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t), Now: func() time.Time { return clock }})
		if _, _, err := s.LoadPosition(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		first := clock.Add(-time.Minute)
		poison := event.Parked{Processor: "p", Position: 5, StreamID: "acct-1", Version: 2, Type: "deposited",
			Error: "boom\x00 \xff", Attempts: 3, FirstFailedAt: first}
		behind := event.Parked{Processor: "p", Position: 9, StreamID: "acct-1", Type: "withdrawn", WaitsOn: 5}

		// Fenced: nothing is recorded.
		if saved, err := s.Park(ctx, "p", 1, 0, 5, []event.Parked{poison}); err != nil || saved {
			t.Fatalf("Park with a stale epoch = %v, %v; want false, nil", saved, err)
		}
		if rows, err := s.ParkedEvents(ctx, "p", "", 0); err != nil || len(rows) != 0 {
			t.Fatalf("ParkedEvents after a fenced Park = %v, %v; want none", rows, err)
		}

		if saved, err := s.Park(ctx, "p", 0, 0, 5, []event.Parked{poison}); err != nil || !saved {
			t.Fatalf("Park = %v, %v; want true, nil", saved, err)
		}
		if pos, _, err := s.LoadPosition(ctx, "p"); err != nil || pos != 5 {
			t.Fatalf("position after Park = %d, %v; want 5", pos, err)
		}
		err := s.Transaction(ctx, func(tx *gorm.DB) error {
			if err := s.ParkTx(ctx, tx, []event.Parked{behind, {Processor: "p", Position: 12, StreamID: "acct-2", Type: "deposited", Error: "bad"}}); err != nil {
				return err
			}
			_, err := s.SavePositionTx(ctx, tx, "p", 0, 5, 12)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		rows, err := s.ParkedEvents(ctx, "p", "acct-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("ParkedEvents(acct-1) = %+v; want 2", rows)
		}
		got := rows[0]
		want := poison
		want.Error = `boom\x00 ` + "\uFFFD" // the same on both databases
		want.LastFailedAt = clock
		if !got.FirstFailedAt.Equal(want.FirstFailedAt) || !got.LastFailedAt.Equal(clock) {
			t.Errorf("times = %v, %v; want %v, %v", got.FirstFailedAt, got.LastFailedAt, first, clock)
		}
		got.FirstFailedAt, got.LastFailedAt, want.FirstFailedAt, want.LastFailedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got != want {
			t.Errorf("parked = %+v; want %+v", got, want)
		}
		if rows[1].Position != 9 || rows[1].WaitsOn != 5 || rows[1].Attempts != 0 || rows[1].Error != "" {
			t.Errorf("parked behind = %+v; want position 9 waiting on 5", rows[1])
		}
		if rows, err := s.ParkedEvents(ctx, "p", "", 1); err != nil || len(rows) != 1 || rows[0].Position != 5 {
			t.Errorf("ParkedEvents(limit 1) = %+v, %v; want position 5", rows, err)
		}
		if rows, err := s.ParkedEvents(ctx, "other", "", 0); err != nil || len(rows) != 0 {
			t.Errorf("ParkedEvents(other processor) = %+v, %v; want none", rows, err)
		}

		streams, err := s.ParkedStreams(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if len(streams) != 2 || streams[0].StreamID != "acct-1" || streams[0].First != 5 || streams[0].Count != 2 ||
			!streams[0].Since.Equal(first) || streams[1].StreamID != "acct-2" || streams[1].Count != 1 {
			t.Errorf("ParkedStreams = %+v; want acct-1 (2 from 5, since %v) then acct-2 (1)", streams, first)
		}
		if n, oldest, err := s.ParkedCount(ctx, "p"); err != nil || n != 3 || !oldest.Equal(first) {
			t.Errorf("ParkedCount = %d, %v, %v; want 3, %v", n, oldest, err, first)
		}
		if _, err := s.Park(ctx, "p", 0, 12, 12, []event.Parked{{Processor: "p", Position: 11, StreamID: "x", Type: "t"}}); err != nil {
			t.Fatal(err)
		}
		if counts, err := s.ParkedCounts(ctx); err != nil || len(counts) != 1 || counts["p"] != 4 {
			t.Errorf("ParkedCounts = %v, %v; want p: 4", counts, err)
		}
		if removed, err := s.Unpark(ctx, "p", 11); err != nil || !removed {
			t.Fatalf("Unpark(11) = %v, %v", removed, err)
		}

		// A failed retry of the stream's second event: it fails on its own
		// account now, and the events after it wait on it.
		if _, err := s.Park(ctx, "p", 0, 12, 14, []event.Parked{{Processor: "p", Position: 14, StreamID: "acct-1", Type: "deposited", WaitsOn: 5}}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
		if err := s.ParkedFailed(ctx, "p", 9, "again"); err != nil {
			t.Fatal(err)
		}
		rows, err = s.ParkedEvents(ctx, "p", "acct-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if r := rows[1]; r.Attempts != 1 || r.Error != "again" || r.WaitsOn != 0 || !r.LastFailedAt.Equal(clock) {
			t.Errorf("after ParkedFailed(9) = %+v; want 1 attempt, error again, waiting on nothing", r)
		}
		if r := rows[2]; r.WaitsOn != 9 {
			t.Errorf("event after it = %+v; want it waiting on 9", r)
		}
		if r := rows[0]; r.WaitsOn != 0 || r.Attempts != 3 {
			t.Errorf("event before it = %+v; want it unchanged", r)
		}

		// All or none.
		if removed, err := s.Unpark(ctx, "p", 5, 6); err != nil || removed {
			t.Fatalf("Unpark(5, 6) = %v, %v; want false: 6 is not parked", removed, err)
		}
		if n, _, _ := s.ParkedCount(ctx, "p"); n != 4 {
			t.Fatalf("after a refused Unpark: %d parked; want 4", n)
		}
		if removed, err := s.Unpark(ctx, "p", 5, 9); err != nil || !removed {
			t.Fatalf("Unpark(5, 9) = %v, %v; want true", removed, err)
		}
		if n, _, _ := s.ParkedCount(ctx, "p"); n != 2 {
			t.Fatalf("after Unpark: %d parked; want 2", n)
		}
		err = s.Transaction(ctx, func(tx *gorm.DB) error {
			if removed, err := s.UnparkTx(ctx, tx, "p", 12); err != nil || !removed {
				t.Errorf("UnparkTx(12) = %v, %v; want true", removed, err)
			}
			return errors.New("roll back")
		})
		if err == nil {
			t.Fatal("Transaction did not fail")
		}
		if n, _, _ := s.ParkedCount(ctx, "p"); n != 2 {
			t.Fatalf("after a rolled back UnparkTx: %d parked; want 2", n)
		}

		// Bad input.
		if _, err := s.Park(ctx, "p", 0, 14, 20, []event.Parked{{Processor: "q", Position: 20, StreamID: "s", Type: "t"}}); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Park of another processor's event = %v; want ErrInvalidArgument", err)
		}
		if _, err := s.Park(ctx, "p", 0, 14, 20, []event.Parked{{Processor: "p", Position: 20, StreamID: "", Type: "t"}}); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Park with an empty stream = %v; want ErrInvalidArgument", err)
		}

		// A long error is cut on a character boundary.
		long := strings.Repeat("é", 10_000)
		if _, err := s.Park(ctx, "p", 0, 14, 20, []event.Parked{{Processor: "p", Position: 20, StreamID: "s", Type: "t", Error: long}}); err != nil {
			t.Fatal(err)
		}
		if rows, err := s.ParkedEvents(ctx, "p", "s", 0); err != nil || len(rows) != 1 || len(rows[0].Error) > 8<<10 || !strings.HasPrefix(long, rows[0].Error) {
			t.Errorf("long error stored as %d bytes (%v); want a prefix of at most 8 KiB", len(rows[0].Error), err)
		}

		// Moving the position back forgets those after it: the processor
		// reads them again.
		if _, err := s.Park(ctx, "p", 0, 20, 30, []event.Parked{{Processor: "p", Position: 30, StreamID: "s", Type: "t"}}); err != nil {
			t.Fatal(err)
		}
		if moved, err := s.MovePosition(ctx, "p", 25); err != nil || !moved {
			t.Fatalf("MovePosition(25) = %v, %v", moved, err)
		}
		if rows, err := s.ParkedEvents(ctx, "p", "", 0); err != nil || len(rows) != 3 || rows[2].Position != 20 {
			t.Errorf("after MovePosition(25): %d parked, last at %d (%v); want 12, 14 and 20 kept, 30 forgotten", len(rows), rows[len(rows)-1].Position, err)
		}
		if moved, err := s.MovePosition(ctx, "nobody", 0); err != nil || moved {
			t.Errorf("MovePosition(nobody) = %v, %v; want false", moved, err)
		}

		// A reset forgets them all: the processor reads them again.
		if err := s.ResetPosition(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		if n, oldest, err := s.ParkedCount(ctx, "p"); err != nil || n != 0 || !oldest.IsZero() {
			t.Errorf("ParkedCount after reset = %d, %v, %v; want 0", n, oldest, err)
		}
	})
}
