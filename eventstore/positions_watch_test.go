package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// closed reports whether ch closes within d.
func closed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// Every change of a processor's row that a waiter cares about wakes the
// store's waiters once it has committed — a position saved outside or
// inside a transaction, an error recorded, a pause — and a transaction
// that rolls back wakes no one.
func TestPositionsChanged(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		_, s := setup(t, kind, eventstore.Options{})
		_, epoch, err := s.LoadPosition(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if kind == testdb.Postgres {
			settle(t, s)
		}

		ch, release := s.PositionsChanged()
		defer release()
		if saved, err := s.SavePosition(ctx, "p", epoch, 0, 1); err != nil || !saved {
			t.Fatalf("SavePosition = %v, %v", saved, err)
		}
		if !closed(ch, 10*time.Second) {
			t.Fatal("SavePosition did not wake the waiters")
		}

		if kind == testdb.Postgres {
			// The save's NOTIFY reaches the listener after its local
			// signal has woken the waiters: let it arrive.
			drain(s)
		}
		ch, release2 := s.PositionsChanged()
		defer release2()
		err = s.Transaction(ctx, func(tx *gorm.DB) error {
			if saved, err := s.SavePositionTx(ctx, tx, "p", epoch, 1, 2); err != nil || !saved {
				t.Fatalf("SavePositionTx = %v, %v", saved, err)
			}
			if closed(ch, 100*time.Millisecond) {
				t.Error("a position saved in a transaction woke the waiters before the commit")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !closed(ch, 10*time.Second) {
			t.Fatal("the commit of a position saved in a transaction did not wake the waiters")
		}

		for what, change := range map[string]func() error{
			"SetProcessorError": func() error { return s.SetProcessorError(ctx, "p", "boom") },
			"SetPaused":         func() error { return s.SetPaused(ctx, "p", true) },
		} {
			ch, release := s.PositionsChanged()
			if err := change(); err != nil {
				t.Fatal(err)
			}
			if !closed(ch, 10*time.Second) {
				t.Errorf("%s did not wake the waiters", what)
			}
			release()
		}
	})
}

// settle waits for the wake-up that a store's PostgreSQL listener sends
// once it listens (anything committed before went unseen), so that what
// the test sees next is a commit's.
func settle(t *testing.T, s *eventstore.Store) {
	t.Helper()
	ch, release := s.PositionsChanged()
	defer release()
	closed(ch, 10*time.Second)
}

// drain waits until no wake-up has come for a while: the notifications of
// earlier commits have all arrived.
func drain(s *eventstore.Store) {
	for {
		ch, release := s.PositionsChanged()
		quiet := !closed(ch, 300*time.Millisecond)
		release()
		if quiet {
			return
		}
	}
}

// On PostgreSQL, a commit through one store wakes the waiters of another
// store on the database (another process, in production) — through NOTIFY,
// sent when the transaction commits and not when it rolls back.
func TestPositionsChangedAcrossStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testdb.New(t, testdb.Postgres)
	writer := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
	other, err := testdb.Open(testdb.Postgres, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	testkit.CloseWhenDone(t, other)
	waiter := testkit.NewStore(t, other, testkit.NewRegistry(), eventstore.Options{})
	_, epoch, err := writer.LoadPosition(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	settle(t, waiter)

	ch, release := waiter.PositionsChanged()
	defer release()
	err = writer.Transaction(ctx, func(tx *gorm.DB) error {
		if saved, err := writer.SavePositionTx(ctx, tx, "p", epoch, 0, 5); err != nil || !saved {
			t.Fatalf("SavePositionTx = %v, %v", saved, err)
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("the transaction committed")
	}
	if closed(ch, 300*time.Millisecond) {
		t.Error("a rolled-back position save woke another store's waiters")
	}
	if saved, err := writer.SavePosition(ctx, "p", epoch, 0, 5); err != nil || !saved {
		t.Fatalf("SavePosition = %v, %v", saved, err)
	}
	if !closed(ch, 10*time.Second) {
		t.Fatal("a position saved through one store did not wake another store's waiters")
	}
	if pos, stopped, err := waiter.ProcessorProgress(ctx, "p", 5); pos != 5 || stopped != "" || err != nil {
		t.Errorf("the other store's ProcessorProgress = %d, %q, %v; want 5", pos, stopped, err)
	}

	ch, release2 := waiter.PositionsChanged()
	defer release2()
	if err := writer.SetProcessorError(ctx, "p", "boom"); err != nil {
		t.Fatal(err)
	}
	if !closed(ch, 10*time.Second) {
		t.Fatal("an error recorded through one store did not wake another store's waiters")
	}
}

func TestProcessorProgress(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := context.Background()
		_, s := setup(t, kind, eventstore.Options{})
		check := func(what string, target, wantPos int64, wantStopped string) {
			t.Helper()
			pos, stopped, err := s.ProcessorProgress(ctx, "p", target)
			if err != nil || pos != wantPos || !strings.Contains(stopped, wantStopped) || (wantStopped == "") != (stopped == "") {
				t.Errorf("%s: ProcessorProgress(p, %d) = %d, %q, %v; want %d, %q", what, target, pos, stopped, err, wantPos, wantStopped)
			}
		}
		check("no row", 10, 0, "")
		_, epoch, err := s.LoadPosition(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if saved, err := s.SavePosition(ctx, "p", epoch, 0, 7); err != nil || !saved {
			t.Fatalf("SavePosition = %v, %v", saved, err)
		}
		check("running, behind", 10, 7, "")
		check("running, there", 7, 7, "")

		if err := s.SetPaused(ctx, "p", true); err != nil {
			t.Fatal(err)
		}
		check("paused, behind", 10, 7, "paused")
		check("paused, there", 5, 7, "")
		if err := s.SetProcessorError(ctx, "p", "handle at 8: boom"); err != nil {
			t.Fatal(err)
		}
		check("failed and paused, behind", 10, 7, "stopped after an error: handle at 8: boom")
		if err := s.SetPaused(ctx, "p", false); err != nil {
			t.Fatal(err)
		}
		check("failed, behind", 8, 7, "handle at 8: boom")
		check("failed, there", 7, 7, "")
		if err := s.SetProcessorError(ctx, "p", ""); err != nil {
			t.Fatal(err)
		}
		check("running again, behind", 8, 7, "")
	})
}
