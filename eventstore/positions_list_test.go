package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

func TestListPositions(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := context.Background()
		_, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t)})

		got, err := s.ListPositions(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("ListPositions on a new store = %v, %v; want none", got, err)
		}
		for _, name := range []string{"b", "a"} {
			if _, _, err := s.LoadPosition(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		epoch, _, ok, err := s.AcquireLease(ctx, "a", "owner-1", time.Minute)
		if err != nil || !ok {
			t.Fatalf("AcquireLease = %v, %v", ok, err)
		}
		if saved, err := s.SavePosition(ctx, "a", epoch, 0, 7); err != nil || !saved {
			t.Fatalf("SavePosition = %v, %v", saved, err)
		}
		if err := s.SetProcessorError(ctx, "b", "handler failed: boom"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPaused(ctx, "b", true); err != nil {
			t.Fatal(err)
		}

		got, err = s.ListPositions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
			t.Fatalf("ListPositions = %+v; want a then b", got)
		}
		a, b := got[0], got[1]
		if a.Position != 7 || a.Epoch != epoch || a.Owner != "owner-1" || a.LeaseUntil.Before(time.Now().Add(30*time.Second)) {
			t.Errorf("a = %+v; want position 7, epoch %d, owner-1 holding a lease about a minute long", a, epoch)
		}
		if a.Paused || a.LastError != "" || !a.FailedAt.IsZero() {
			t.Errorf("a = %+v; want not paused and no error", a)
		}
		if !b.Paused || b.LastError != "handler failed: boom" || b.FailedAt.IsZero() || b.Owner != "" || !b.LeaseUntil.IsZero() {
			t.Errorf("b = %+v; want paused, with its error and when, and no owner", b)
		}

		if err := s.SetProcessorError(ctx, "b", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPaused(ctx, "b", false); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseLease(ctx, "a", "owner-1", epoch); err != nil {
			t.Fatal(err)
		}
		got, err = s.ListPositions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Owner != "" || !got[0].LeaseUntil.IsZero() {
			t.Errorf("a after release = %+v; want no owner", got[0])
		}
		if got[1].Paused || got[1].LastError != "" || !got[1].FailedAt.IsZero() {
			t.Errorf("b after clearing = %+v; want not paused, no error", got[1])
		}
	})
}
