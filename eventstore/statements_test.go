package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// TestReadsInOneQuery counts the statements of the reads that processors
// and aggregate loads make most: each is one query when its events fit in
// a page (a processor's batch with its head, a stream read with its
// deleted-stream check, a snapshot with the events after it).
func TestReadsInOneQuery(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		db, stmts := testdb.NewCounting(t, kind)
		s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		testkit.MustAppend(t, s, "a", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 1}, testkit.Noted{Text: "x"}})
		testkit.MustAppend(t, s, "b", event.NoStream, []any{testkit.Deposited{Amount: 2}})
		if err := s.SaveSnapshot(ctx, event.Snapshot{StreamID: "a", Version: 2, SchemaVersion: 1, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name string
			read func() (int, error)
			want int
		}{
			{"ReadBatch", func() (int, error) {
				b, err := s.ReadBatch(ctx, 0, 100)
				return len(b.Events), err
			}, 4},
			{"ReadBatch_of_a_type", func() (int, error) {
				b, err := s.ReadBatch(ctx, 0, 100, testkit.TypeDeposited)
				return len(b.Events), err
			}, 2},
			{"ReadStream", func() (int, error) {
				evs, err := testkit.Collect(s.ReadStream(ctx, "a", 0, 0))
				return len(evs), err
			}, 3},
			{"ReadStream_of_a_missing_stream", func() (int, error) {
				evs, err := testkit.Collect(s.ReadStream(ctx, "missing", 0, 0))
				return len(evs), err
			}, 0},
			{"ReadStreamFromSnapshot", func() (int, error) {
				_, _, events, err := s.ReadStreamFromSnapshot(ctx, "a", 1)
				if err != nil {
					return 0, err
				}
				evs, err := testkit.Collect(events)
				return len(evs), err
			}, 1},
		} {
			q0, e0, b0 := stmts.Count()
			n, err := tt.read()
			q, e, b := stmts.Count()
			if err != nil || n != tt.want {
				t.Errorf("%s: %d events, %v; want %d, nil", tt.name, n, err, tt.want)
			}
			if q-q0 != 1 || e-e0 != 0 || b-b0 != 0 {
				t.Errorf("%s: %d queries, %d execs, %d transactions; want 1 query", tt.name, q-q0, e-e0, b-b0)
			}
		}
	})
}

// A connection lost in the middle of a batch's rows (pg_terminate_backend,
// a restart, a network cut) leaves a prefix of the batch read: the
// subscription delivers it and resumes after its last event, never again
// from before it (which delivered events twice) nor past it.
func TestSubscriptionResumesAfterAPartialBatch(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, stmts := testdb.NewCounting(t, kind)
		s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		var want []event.Event
		for i := range 4 {
			want = append(want, testkit.MustAppend(t, s, fmt.Sprintf("s-%d", i), event.NoStream,
				[]any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}, testkit.Noted{Text: "n"}, testkit.Deposited{Amount: 3}, testkit.Withdrawn{Amount: 1}})...)
		}
		for _, tt := range []struct {
			name  string
			types []string
		}{{"every_type", nil}, {"some_types", []string{testkit.TypeDeposited, testkit.TypeNoted}}} {
			t.Run(tt.name, func(t *testing.T) {
				var wantHere []event.Event
				for _, e := range want {
					if tt.types == nil || e.Type != testkit.TypeWithdrawn {
						wantHere = append(wantHere, e)
					}
				}
				// The first batch's rows break after 7 events.
				stmts.BreakRows("UNION ALL SELECT COALESCE(MAX(position), 0)", 7)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				var got []event.Event
				for b, err := range s.SubscribeBatches(ctx, 0, 100, tt.types...) {
					if err != nil {
						t.Fatalf("SubscribeBatches after %d events: %v", len(got), err)
					}
					got = append(got, b.Events...)
					if len(got) >= len(wantHere) {
						break
					}
				}
				testkit.PositionsEqual(t, "SubscribeBatches", got, wantHere)
			})
		}
	})
}
