package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testdb"
)

// Failed appends (conflicts, duplicates, a cancelled context) and a deleted
// stream leave holes in the positions; ReadAll and Subscribe still deliver
// every stored event once, in position order.
func TestHolesInPositions(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond, PageSize: 3})
		ctx := t.Context()
		live := follow(ctx, s, 0)

		var ok []event.Event
		ok = append(ok, mustAppend(t, s, "h1", event.NoStream, []any{Opened{Owner: "a"}, Deposited{Amount: 1}})...)
		if _, err := s.Append(ctx, "h1", event.NoStream, []any{Note{}, Note{}}); !errors.Is(err, event.ErrVersionConflict) {
			t.Errorf("Append(h1, NoStream) = %v, want ErrVersionConflict", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Append(cancelled, "h2", event.Any, []any{Note{}}); !errors.Is(err, context.Canceled) {
			t.Errorf("Append(h2) with a cancelled context = %v, want context.Canceled", err)
		}
		ok = append(ok, mustAppend(t, s, "h2", event.Any, []any{Note{Text: "h2"}})...)
		if _, err := s.Append(ctx, "h1", event.Exact(5), []any{Note{}}); !errors.Is(err, event.ErrVersionConflict) {
			t.Errorf("Append(h1, Exact(5)) = %v, want ErrVersionConflict", err)
		}
		if _, err := s.Append(ctx, "h3", event.NoStream, []any{Note{}}, event.WithIDs(ok[0].ID)); !errors.Is(err, event.ErrDuplicateEventID) {
			t.Errorf("Append(h3, ID of h1@1) = %v, want ErrDuplicateEventID", err)
		}
		// Concurrent appends to one new stream: one wins.
		var (
			mu   sync.Mutex
			wins int
			wg   sync.WaitGroup
		)
		start := make(chan struct{})
		for i := range 4 {
			wg.Go(func() {
				<-start
				got, err := s.Append(ctx, "h4", event.NoStream, []any{Tick{Writer: i}, Tick{Writer: i, Seq: 1}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
					ok = append(ok, got...)
				case !errors.Is(err, event.ErrVersionConflict):
					t.Errorf("Append(h4, NoStream) = %v, want nil or ErrVersionConflict", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d of 4 concurrent Append(h4, NoStream) succeeded, want 1", wins)
		}
		ok = append(ok, mustAppend(t, s, "h5", event.Any, []any{Deposited{Amount: 5}, Note{}, Deposited{Amount: 6}})...)
		// Let the live subscription see h2 before it goes.
		live.waitFor(t, ok)
		if err := s.DeleteStream(ctx, "h2", event.Any); err != nil {
			t.Fatalf("DeleteStream(h2) = %v", err)
		}
		ok = append(ok, mustAppend(t, s, "h6", event.NoStream, []any{Note{Text: "last"}})...)
		var stored []event.Event
		for _, e := range ok {
			if e.StreamID != "h2" {
				stored = append(stored, e)
			}
		}
		checkOrder(t, "successful appends", ok)

		checkEvents(t, "ReadAll", mustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0)), stored)
		for i, e := range stored {
			got := mustCollect(t, "ReadAll", s.ReadAll(ctx, e.Position, 1))
			checkEvents(t, fmt.Sprintf("ReadAll(after %d, limit 1)", e.Position), got, stored[i+1:min(i+2, len(stored))])
			// One position below an event finds that event, whatever
			// the holes.
			got = mustCollect(t, "ReadAll", s.ReadAll(ctx, e.Position-1, 1))
			checkEvents(t, fmt.Sprintf("ReadAll(after %d, limit 1)", e.Position-1), got, stored[i:i+1])
		}
		checkEvents(t, "Subscribe(0)", follow(ctx, s, 0).await(t, stored), stored)
		for i, e := range stored[:len(stored)-1] {
			want := stored[i+1:]
			checkEvents(t, fmt.Sprintf("Subscribe(%d)", e.Position), follow(ctx, s, e.Position).await(t, want), want)
		}
		checkEvents(t, "Subscribe(0) started before the appends", live.await(t, ok), ok)
	})
}

func TestSubscribeTypeFilter(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		opts := eventstore.Options{PollInterval: 20 * time.Millisecond}
		db, s := setup(t, kind, opts)
		other := newStore(t, openAgain(t, db), newRegistry(), opts)
		ctx := t.Context()

		var all []event.Event
		all = append(all, mustAppend(t, s, "a", event.NoStream, []any{Opened{Owner: "a"}, Deposited{Amount: 1}, Note{Text: "n1"}})...)
		all = append(all, mustAppend(t, s, "b", event.NoStream, []any{Deposited{Amount: 2}, Deposited{Amount: 3}})...)

		deposits := follow(ctx, s, 0, typeDeposited)
		mixed := follow(ctx, other, 0, typeNote, typeOpened)
		deposits.waitFor(t, filter(all, typeDeposited))

		// Live events, written by this store and by another one.
		all = append(all, mustAppend(t, s, "a", event.Exact(3), []any{Note{Text: "n2"}, Deposited{Amount: 4}})...)
		all = append(all, mustAppend(t, other, "c", event.NoStream, []any{Deposited{Amount: 5}, Opened{Owner: "c"}})...)
		all = append(all, mustAppend(t, s, "c", event.Exact(2), []any{Note{Text: "n3"}})...)
		all = append(all, mustAppend(t, other, "b", event.Any, []any{Deposited{Amount: 6}})...)

		wantDeposits := filter(all, typeDeposited)
		checkEvents(t, "Subscribe(deposits)", deposits.await(t, wantDeposits), wantDeposits)
		wantMixed := filter(all, typeNote, typeOpened)
		slices.SortFunc(wantMixed, func(a, b event.Event) int { return int(a.Position - b.Position) })
		checkEvents(t, "Subscribe(notes, opened)", mixed.await(t, wantMixed), wantMixed)
	})
}

func TestSubscribeCancel(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond, PageSize: 5})
		ctx := t.Context()
		var written []event.Event
		for i := range 10 {
			written = append(written, mustAppend(t, s, fmt.Sprintf("s%d", i%3), event.Any,
				[]any{Deposited{Amount: i}, Note{Text: fmt.Sprint(i)}, Tick{Seq: i}})...)
		}

		t.Run("ends_with_context_canceled_when_idle", func(t *testing.T) {
			f := follow(ctx, s, 0)
			f.waitFor(t, written)
			got, err := f.stop(t)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Subscribe ended with %v, want context.Canceled", err)
			}
			checkEvents(t, "Subscribe", got, written)
		})

		t.Run("ends_with_deadline_exceeded", func(t *testing.T) {
			dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			var got []event.Event
			var errs []error
			for e, err := range s.Subscribe(dctx, written[len(written)-3].Position) {
				if err != nil {
					if !reflect.DeepEqual(e, event.Event{}) {
						t.Errorf("Subscribe yielded %s with error %v, want the zero Event", places([]event.Event{e}), err)
					}
					errs = append(errs, err)
					continue
				}
				if len(errs) > 0 {
					t.Errorf("Subscribe yielded %s after its final error", places([]event.Event{e}))
				}
				got = append(got, e)
			}
			if len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
				t.Errorf("Subscribe yielded errors %v, want exactly one context.DeadlineExceeded", errs)
			}
			checkEvents(t, "Subscribe", got, written[len(written)-2:])
		})

		t.Run("ends_with_context_canceled_during_catch_up", func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			next, stop := iter.Pull2(s.Subscribe(cctx, 0))
			defer stop()
			e, err, ok := next()
			if !ok || err != nil {
				t.Fatalf("Subscribe: first item = %v, %v, %v; want an event", places([]event.Event{e}), err, ok)
			}
			got := []event.Event{e}
			cancel()
			for i := 0; ; i++ {
				e, err, ok := next()
				if !ok {
					t.Fatalf("Subscribe stopped after cancel without yielding ctx.Err() (after %d events)", len(got))
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("Subscribe: error after cancel = %v, want context.Canceled", err)
					}
					if !reflect.DeepEqual(e, event.Event{}) {
						t.Errorf("Subscribe yielded %s with its final error, want the zero Event", places([]event.Event{e}))
					}
					break
				}
				got = append(got, e)
				if i > len(written) {
					t.Fatalf("Subscribe goes on after cancel: %d events", len(got))
				}
			}
			if _, _, ok := next(); ok {
				t.Errorf("Subscribe yielded again after its final error, want it to stop")
			}
			// What it gave before stopping is a prefix of the store.
			checkEvents(t, "Subscribe before cancel", got, written[:min(len(got), len(written))])
		})

		t.Run("cancelled_before_start", func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			var errs []error
			for _, err := range s.Subscribe(cctx, 0) {
				if err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
				t.Errorf("Subscribe with a cancelled context yielded errors %v, want exactly one context.Canceled", errs)
			}
		})

		t.Run("break_ends_the_subscription", func(t *testing.T) {
			n := 0
			for _, err := range s.Subscribe(ctx, 0) {
				if err != nil {
					t.Fatalf("Subscribe: %v", err)
				}
				if n++; n == 2 {
					break
				}
			}
			// And the store still takes appends and wakes other
			// subscribers.
			f := follow(ctx, s, head(t, s))
			e := mustAppend(t, s, "after-break", event.NoStream, []any{Note{}})
			checkEvents(t, "Subscribe after a break", f.await(t, e), e)
		})

		t.Run("from_head_gets_only_new_events", func(t *testing.T) {
			f := follow(ctx, s, head(t, s))
			var want []event.Event
			for i := range 3 {
				want = append(want, mustAppend(t, s, "new", event.Any, []any{Note{Text: fmt.Sprint(i)}})...)
			}
			checkEvents(t, "Subscribe(head)", f.await(t, want), want)
		})
	})
}

// A reactor appends from inside its subscription loop, and a migration
// tool from inside a ReadAll loop: neither may deadlock, also on an
// in-memory SQLite database that has a single connection.
func TestAppendInsideReadLoops(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, s *eventstore.Store) {
		ctx := t.Context()
		for i := range 3 {
			mustAppend(t, s, fmt.Sprintf("acct-%d", i), event.NoStream, []any{Opened{Owner: fmt.Sprint(i)}})
		}
		// ReadAll loop appending copies.
		n := 0
		for e, err := range s.ReadAll(ctx, 0, 0, typeOpened) {
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			mustAppend(t, s, "copy-"+e.StreamID, event.NoStream, []any{Note{Text: e.StreamID}})
			n++
		}
		if n != 3 {
			t.Errorf("ReadAll(opened) gave %d events while appending, want 3", n)
		}

		// Reactor: every Opened gets a Deposited in its stream, caused by it.
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		opened, reactions := 0, 0
		for e, err := range s.Subscribe(sctx, 0, typeOpened, typeDeposited) {
			if err != nil {
				t.Fatalf("Subscribe after %d opened and %d reactions: %v", opened, reactions, err)
			}
			switch e.Type {
			case typeOpened:
				opened++
				mustAppend(t, s, e.StreamID, event.Exact(e.Version), []any{Deposited{Amount: 10}},
					event.WithCausationID(e.ID.String()), event.WithCorrelationID(e.ID.String()))
			case typeDeposited:
				reactions++
				if e.CausationID == "" {
					t.Errorf("reaction %s has no causation ID", places([]event.Event{e}))
				}
			}
			if reactions == 3 {
				break
			}
		}
		if opened != 3 || reactions != 3 {
			t.Errorf("reactor saw %d opened and %d reactions, want 3 and 3", opened, reactions)
		}
	}
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{PollInterval: 20 * time.Millisecond})
		run(t, s)
	})
	t.Run("sqlite_in_memory", func(t *testing.T) {
		t.Parallel()
		db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if s, err := db.DB(); err == nil {
				s.Close()
			}
		})
		s := newStore(t, db, newRegistry(), eventstore.Options{PollInterval: 20 * time.Millisecond})
		migrate(t, s)
		run(t, s)
	})
}

// On PostgreSQL a subscription wakes on the NOTIFY of a commit by another
// store, without waiting for a poll, and keeps doing so after its LISTEN
// connection is killed.
func TestSubscribeListenOnPostgres(t *testing.T) {
	t.Parallel()
	if !slices.Contains(testdb.Kinds(), testdb.Postgres) {
		t.Skipf("PostgreSQL only; set %s", testdb.EnvPostgres)
	}
	db := testdb.New(t, testdb.Postgres)
	ctx := t.Context()
	writer := newStore(t, db.Gorm, newRegistry(), eventstore.Options{})
	migrate(t, writer)

	// The subscriber's sessions carry a name of their own, so that the
	// test can find its LISTEN connection.
	appName := fmt.Sprintf("cairn_listen_%d", time.Now().UnixNano())
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	subDB, err := eventstore.OpenPostgres(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := subDB.DB(); err == nil {
			s.Close()
		}
	})
	// Polling so rare that only notifications can wake the subscription
	// within the test.
	sub := newStore(t, subDB, newRegistry(), eventstore.Options{PollInterval: time.Hour})
	f := follow(ctx, sub, 0)

	var want []event.Event
	want = append(want, mustAppend(t, writer, "n", event.NoStream, []any{Note{Text: "one"}})...)
	if !f.waitFor(t, want) {
		t.FailNow()
	}
	// Later commits wake it too (not only the re-read after LISTEN).
	for i := range 3 {
		want = append(want, mustAppend(t, writer, "n", event.Any, []any{Note{Text: fmt.Sprint(i)}})...)
		if !f.waitFor(t, want) {
			t.FailNow()
		}
	}

	// Kill the LISTEN connection.
	killed := int64(0)
	for start := time.Now(); killed == 0; time.Sleep(10 * time.Millisecond) {
		if err := db.Gorm.WithContext(ctx).Raw(
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ? AND query LIKE 'LISTEN%'",
			appName).Scan(&killed).Error; err != nil {
			t.Fatal(err)
		}
		if killed == 0 && time.Since(start) > 10*time.Second {
			t.Fatalf("no LISTEN session named %s found", appName)
		}
	}
	for i := range 3 {
		want = append(want, mustAppend(t, writer, "n", event.Any, []any{Note{Text: fmt.Sprint("after ", i)}})...)
		if !f.waitFor(t, want) {
			t.FailNow()
		}
	}
	checkEvents(t, "Subscribe", f.await(t, want), want)
}
