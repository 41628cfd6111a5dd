package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

var errRollback = errors.New("roll back")

// AppendTx's events commit with the transaction's other writes, or not at
// all.
func TestAppendTxCommitsWithTransaction(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		if err := db.Gorm.Exec(`CREATE TABLE side (n integer NOT NULL)`).Error; err != nil {
			t.Fatal(err)
		}
		testkit.MustAppend(t, s, "a", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
		count := func() (n int64) {
			t.Helper()
			if err := db.Gorm.Raw(`SELECT count(*) FROM side`).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Rolled back: neither the row nor the events.
		err := s.Transaction(ctx, func(tx *gorm.DB) error {
			if err := tx.Exec(`INSERT INTO side (n) VALUES (1)`).Error; err != nil {
				return err
			}
			if _, err := s.AppendTx(ctx, tx, "a", event.Exact(1), []any{testkit.Deposited{Amount: 5}}); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("Transaction() = %v, want %v", err, errRollback)
		}
		if v := testkit.StreamVersion(t, s, "a"); v != 1 || count() != 0 {
			t.Fatalf("after a rollback: stream version %d and %d rows, want 1 and 0", v, count())
		}

		// Committed: both, and the events as returned.
		var got []event.Event
		err = s.Transaction(ctx, func(tx *gorm.DB) error {
			if err := tx.Exec(`INSERT INTO side (n) VALUES (2)`).Error; err != nil {
				return err
			}
			var err error
			got, err = s.AppendTx(ctx, tx, "a", event.Exact(1), []any{testkit.Deposited{Amount: 5}, testkit.Withdrawn{Amount: 2}},
				event.WithCausationID("cause"), event.WithMetadata(map[string]string{"k": "v"}))
			return err
		})
		if err != nil {
			t.Fatalf("Transaction() = %v", err)
		}
		if count() != 1 {
			t.Errorf("%d rows after a commit, want 1", count())
		}
		stored := testkit.MustCollect(t, "ReadStream", s.ReadStream(ctx, "a", 2, 0))
		testkit.CheckEvents(t, "AppendTx", got, stored)
		if len(got) != 2 || got[0].Version != 2 || got[1].Version != 3 || got[1].Position <= got[0].Position || got[0].CausationID != "cause" {
			t.Errorf("AppendTx returned %s, want versions 2 and 3 caused by \"cause\"", testkit.Places(got))
		}
	})
}

// AppendTx checks versions and IDs as Append does: a conflict, a deleted
// stream and an ID stored elsewhere fail; events stored already under the
// given IDs, at the same place, are returned as stored.
func TestAppendTxChecks(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		testkit.MustAppend(t, s, "a", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
		testkit.MustAppend(t, s, "gone", event.NoStream, []any{testkit.Opened{Owner: "gus"}})
		if err := s.DeleteStream(ctx, "gone", event.Any); err != nil {
			t.Fatal(err)
		}
		ids := []uuid.UUID{uuid.New(), uuid.New()}
		appendTx := func(stream string, expected event.ExpectedVersion, opts ...event.AppendOption) ([]event.Event, error) {
			var out []event.Event
			err := s.Transaction(ctx, func(tx *gorm.DB) error {
				var err error
				out, err = s.AppendTx(ctx, tx, stream, expected, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}}, opts...)
				return err
			})
			return out, err
		}
		first, err := appendTx("a", event.Exact(1), event.WithIDs(ids...))
		if err != nil {
			t.Fatal(err)
		}
		head := testkit.Head(t, s)
		again, err := appendTx("a", event.Exact(1), event.WithIDs(ids...))
		if err != nil {
			t.Fatalf("AppendTx of stored IDs = %v, want the stored events", err)
		}
		testkit.CheckEvents(t, "AppendTx again", again, first)
		if h := testkit.Head(t, s); h != head {
			t.Errorf("head %d after appending stored events again, want %d", h, head)
		}

		_, err = appendTx("a", event.Exact(1))
		testkit.CheckConflict(t, "AppendTx", err, "a", event.Exact(1), 3)
		if _, err := appendTx("gone", event.Any); !errors.Is(err, event.ErrStreamDeleted) {
			t.Errorf("AppendTx to a deleted stream = %v, want ErrStreamDeleted", err)
		}
		if _, err := appendTx("b", event.Any, event.WithIDs(ids...)); !errors.Is(err, event.ErrDuplicateEventID) {
			t.Errorf("AppendTx of IDs stored in another stream = %v, want ErrDuplicateEventID", err)
		}

		// Several appends at once, two to one stream: in order, all or
		// nothing.
		var all [][]event.Event
		err = s.Transaction(ctx, func(tx *gorm.DB) error {
			var err error
			all, err = s.AppendAllTx(ctx, tx, []event.AppendRequest{
				{StreamID: "c", Expected: event.NoStream, Events: []any{testkit.Opened{Owner: "cy"}}},
				{StreamID: "a", Expected: event.Exact(3), Events: []any{testkit.Noted{Text: "x"}}},
				{StreamID: "c", Expected: event.Exact(1), Events: []any{testkit.Deposited{Amount: 9}}},
			})
			return err
		})
		if err != nil {
			t.Fatalf("AppendAllTx() = %v", err)
		}
		if len(all) != 3 || all[0][0].Version != 1 || all[1][0].Version != 4 || all[2][0].Version != 2 {
			t.Errorf("AppendAllTx() = %v, want versions 1, 4 and 2", all)
		}
		err = s.Transaction(ctx, func(tx *gorm.DB) error {
			_, err := s.AppendAllTx(ctx, tx, []event.AppendRequest{
				{StreamID: "d", Expected: event.NoStream, Events: []any{testkit.Opened{Owner: "di"}}},
				{StreamID: "a", Expected: event.Exact(1), Events: []any{testkit.Noted{Text: "stale"}}},
			})
			return err
		})
		testkit.CheckConflict(t, "AppendAllTx", err, "a", event.Exact(1), 4)
		if _, err := s.StreamVersion(ctx, "d"); err != nil || testkit.StreamVersion(t, s, "d") != 0 {
			t.Errorf("stream d has version %d after a failed AppendAllTx, want 0", testkit.StreamVersion(t, s, "d"))
		}
	})
}

// Transactions that append while plain appends go on keep the global
// order: a subscriber that follows the store live misses nothing, even
// though each transaction holds its events uncommitted for a while after
// it appends them.
func TestAppendTxKeepsGlobalOrder(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{PollInterval: 10 * time.Millisecond})
		other := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		ctx := t.Context()
		f := testkit.Follow(ctx, s, 0)
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				for i := range 30 {
					if _, err := other.Append(ctx, fmt.Sprintf("plain-%d", w), event.Any, []any{testkit.Tick{Writer: w, Seq: i}}); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			})
		}
		for w := range 2 {
			wg.Go(func() {
				for i := range 10 {
					err := s.Transaction(ctx, func(tx *gorm.DB) error {
						if _, err := s.AppendTx(ctx, tx, fmt.Sprintf("tx-%d", w), event.Any, []any{testkit.Tick{Writer: 10 + w, Seq: i}}); err != nil {
							return err
						}
						time.Sleep(5 * time.Millisecond) // commit late
						return nil
					})
					if err != nil {
						t.Errorf("transaction: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		want := testkit.MustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
		if len(want) != 3*30+2*10 {
			t.Fatalf("%d events stored, want %d", len(want), 3*30+2*10)
		}
		testkit.CheckEvents(t, "Subscribe", f.Await(t, want), want)
	})
}

// A subscriber of the store is woken when a transaction of
// Store.Transaction that appended commits, not only by its poll.
func TestAppendTxWakesSubscribers(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: time.Hour})
		ctx := t.Context()
		f := testkit.Follow(ctx, s, 0)
		var want []event.Event
		for i := range 3 {
			err := s.Transaction(ctx, func(tx *gorm.DB) error {
				evs, err := s.AppendTx(ctx, tx, "w", event.Any, []any{testkit.Noted{Text: fmt.Sprint(i)}})
				want = append(want, evs...)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if !f.WaitFor(t, want) {
				t.FailNow()
			}
		}
		testkit.CheckEvents(t, "Subscribe", f.Await(t, want), want)
	})
}

// SavepointTx undoes the writes of a failing step and keeps the
// transaction going.
func TestSavepointTx(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db, s := setup(t, kind, eventstore.Options{})
		ctx := t.Context()
		if err := db.Gorm.Exec(`CREATE TABLE steps (n integer PRIMARY KEY)`).Error; err != nil {
			t.Fatal(err)
		}
		err := s.Transaction(ctx, func(tx *gorm.DB) error {
			for n := range 5 {
				err := s.SavepointTx(ctx, tx, func() error {
					if err := tx.Exec(`INSERT INTO steps (n) VALUES (?)`, n).Error; err != nil {
						return err
					}
					switch n {
					case 1:
						return errRollback
					case 3:
						// A statement that fails leaves a PostgreSQL
						// transaction aborted until the rollback to the
						// savepoint.
						return tx.Exec(`INSERT INTO steps (n) VALUES (?)`, n).Error
					}
					return nil
				})
				if (err != nil) != (n == 1 || n == 3) {
					t.Errorf("step %d: SavepointTx() = %v", n, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		if err := db.Gorm.Raw(`SELECT n FROM steps ORDER BY n`).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[0 2 4]" {
			t.Errorf("steps committed %v, want [0 2 4]", got)
		}
	})
}

func TestCreatePositionAndPaused(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{})
		ctx := context.Background()
		if created, err := s.CreatePosition(ctx, "p", 42); err != nil || !created {
			t.Fatalf("CreatePosition(p, 42) = %v, %v; want true, nil", created, err)
		}
		if created, err := s.CreatePosition(ctx, "p", 7); err != nil || created {
			t.Fatalf("CreatePosition(p, 7) again = %v, %v; want false, nil", created, err)
		}
		if pos, epoch, err := s.LoadPosition(ctx, "p"); err != nil || pos != 42 || epoch != 0 {
			t.Errorf("LoadPosition(p) = %d, %d, %v; want 42, 0, nil", pos, epoch, err)
		}
		if _, err := s.CreatePosition(ctx, "q", -1); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("CreatePosition(q, -1) = %v, want ErrInvalidArgument", err)
		}
		for _, want := range []bool{false, true, false} {
			if want {
				if err := s.SetPaused(ctx, "p", true); err != nil {
					t.Fatal(err)
				}
			} else if err := s.SetPaused(ctx, "p", false); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Paused(ctx, "p"); err != nil || got != want {
				t.Errorf("Paused(p) = %v, %v; want %v", got, err, want)
			}
		}
		if got, err := s.Paused(ctx, "none"); err != nil || got {
			t.Errorf("Paused(none) = %v, %v; want false, nil", got, err)
		}
	})
}
