package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

func TestReadBatchThroughCoversOtherTypes(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		opened := mustAppend(t, s, "acct-1", event.NoStream, []any{Opened{Owner: "ann"}})
		notes := mustAppend(t, s, "notes", event.NoStream, []any{Note{Text: "a"}, Note{Text: "b"}, Note{Text: "c"}})
		last := notes[len(notes)-1].Position

		b, err := s.ReadBatch(ctx, 0, 10, typeOpened)
		if err != nil {
			t.Fatalf("ReadBatch(opened) = %v", err)
		}
		checkEvents(t, "ReadBatch(opened)", b.Events, opened)
		if b.Through != last {
			t.Errorf("ReadBatch(opened).Through = %d, want the head %d: the notes after it were read past", b.Through, last)
		}

		b, err = s.ReadBatch(ctx, b.Through, 10, typeOpened)
		if err != nil || len(b.Events) != 0 || b.Through != last {
			t.Errorf("ReadBatch(after head) = %d events, through %d, %v; want none, through %d", len(b.Events), b.Through, err, last)
		}

		// A full batch ends at its last event: the rest is not read yet.
		b, err = s.ReadBatch(ctx, 0, 2)
		if err != nil {
			t.Fatalf("ReadBatch(limit 2) = %v", err)
		}
		if len(b.Events) != 2 || b.Through != b.Events[1].Position {
			t.Errorf("ReadBatch(limit 2) = %d events through %d, want 2 through the second event's position", len(b.Events), b.Through)
		}
	})
}

func TestReadBatchNeverGoesBack(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		mustAppend(t, s, "keep", event.NoStream, []any{Note{Text: "kept"}})
		gone := mustAppend(t, s, "gone", event.NoStream, []any{Note{Text: "forgotten"}})
		pos := gone[0].Position
		if err := s.DeleteStream(ctx, "gone", event.Any); err != nil {
			t.Fatal(err)
		}
		// The head moved back below pos: a reader at pos stays there.
		b, err := s.ReadBatch(ctx, pos, 10)
		if err != nil || len(b.Events) != 0 || b.Through != pos {
			t.Errorf("ReadBatch(%d) after deleting the newest stream = %d events, through %d, %v; want none through %d", pos, len(b.Events), b.Through, err, pos)
		}
	})
}

func TestReadBatchRejectsBadInput(t *testing.T) {
	_, s := setup(t, testdb.SQLite, eventstore.Options{})
	for _, tt := range []struct {
		after int64
		limit int
	}{{-1, 10}, {0, 0}, {0, -5}} {
		if _, err := s.ReadBatch(t.Context(), tt.after, tt.limit); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("ReadBatch(%d, %d) = %v, want ErrInvalidArgument", tt.after, tt.limit, err)
		}
	}
}

func TestSubscribeBatches(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond})
		var want []event.Event
		for i := range 5 {
			want = append(want, mustAppend(t, s, "ticks", event.Any, []any{Tick{Seq: 2 * i}, Tick{Seq: 2*i + 1}})...)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var got []event.Event
		var batches int
		var through int64
		for b, err := range s.SubscribeBatches(ctx, 0, 4, typeTick) {
			if err != nil {
				t.Fatalf("SubscribeBatches: %v after %d events", err, len(got))
			}
			batches++
			if len(b.Events) > 4 {
				t.Fatalf("batch of %d events, want at most the limit 4", len(b.Events))
			}
			if b.Through < through {
				t.Fatalf("Through went back from %d to %d", through, b.Through)
			}
			through = b.Through
			got = append(got, b.Events...)
			if len(got) == len(want) && batches == 3 {
				// Caught up; now a live append of another type only
				// moves Through.
				mustAppend(t, s, "notes", event.Any, []any{Note{Text: "not a tick"}})
				continue
			}
			if len(got) == len(want) && batches > 3 {
				if len(b.Events) != 0 {
					t.Fatalf("live batch holds %d events, want only a position update", len(b.Events))
				}
				if h := head(t, s); b.Through != h {
					t.Fatalf("live batch through %d, want the head %d", b.Through, h)
				}
				break
			}
		}
		checkEvents(t, "SubscribeBatches", got, want)
		if batches != 4 {
			t.Errorf("got %d batches, want 3 of catch-up (4+4+2) and 1 live", batches)
		}
	})
}
