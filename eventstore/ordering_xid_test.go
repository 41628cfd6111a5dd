package eventstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/storetest"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// skipWithoutPostgres skips t when no PostgreSQL server is configured.
func skipWithoutPostgres(t *testing.T) {
	t.Helper()
	if os.Getenv(testdb.EnvPostgres) == "" {
		t.Skipf("%s not set", testdb.EnvPostgres)
	}
}

// xidConfig is the conformance suite's configuration under OrderingXID.
// The horizon is the whole cluster's, which other tests share: reads wait
// for it for up to half a minute, so that a busy server does not make a
// read that follows an append miss it.
func xidConfig(events int) storetest.Config {
	return storetest.Config{
		NewDatabase:    func(t testing.TB) string { return testdb.NewDSN(t, testdb.Postgres) },
		Open:           eventstore.OpenPostgres,
		Options:        eventstore.Options{Ordering: eventstore.OrderingXID, HorizonWait: 30 * time.Second},
		OrderingEvents: events,
		Parallel:       true,
	}
}

// The ordering check across processes bites: subscribers that read in
// position order without the horizon of OrderingXID skip events, where
// the store's own subscriptions (the conformance suite's part
// global_order_holds_across_processes) skip none.
func TestOrderingNegativeControl(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	rep := storetest.CheckProcessOrder(t, xidConfig(8000), storetest.ProcessOrder{
		Subscribe: func(ctx context.Context, s *eventstore.Store, after int64) iter.Seq2[event.Event, error] {
			return s.SubscribeIgnoringHorizon(ctx, after)
		},
		Stall: 5 * time.Second,
	})
	t.Logf("reading without the horizon: %v", rep)
	if rep.Skipped == 0 {
		t.Errorf("reading without the horizon: %v; want skipped events: the check does not bite", rep)
	}
}

// openStore opens another pool on db and a store over it with opts (whose
// Ordering the caller sets), not migrated.
func openStore(t *testing.T, db testdb.DB, opts eventstore.Options) *eventstore.Store {
	t.Helper()
	g, err := testdb.Open(db.Kind, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	testkit.CloseWhenDone(t, g)
	return testkit.NewStore(t, g, testkit.NewRegistry(), opts)
}

var xidOpts = eventstore.Options{Ordering: eventstore.OrderingXID, HorizonWait: 30 * time.Second}

// A store opened with another ordering than its database was migrated
// with fails clearly, whatever it is asked to do, and writes nothing.
func TestOrderingRecordedAtMigrate(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	note := []any{testkit.Noted{Text: "x"}}
	for _, tc := range []struct {
		name          string
		migrated, use eventstore.Ordering
		legacy        bool // the database predates the recorded ordering
	}{
		{name: "lock_database_xid_store", migrated: eventstore.OrderingLock, use: eventstore.OrderingXID},
		{name: "xid_database_lock_store", migrated: eventstore.OrderingXID, use: eventstore.OrderingLock},
		{name: "legacy_database_xid_store", migrated: eventstore.OrderingLock, use: eventstore.OrderingXID, legacy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Postgres)
			first := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{Ordering: tc.migrated, HorizonWait: 30 * time.Second})
			stored := testkit.MustAppend(t, first, "s", event.NoStream, note)
			if tc.legacy {
				if err := db.Gorm.Exec("DROP TABLE cairn_store").Error; err != nil {
					t.Fatal(err)
				}
			}
			wrong := openStore(t, db, eventstore.Options{Ordering: tc.use, HorizonWait: 30 * time.Second})
			ctx := t.Context()
			checks := map[string]error{
				"Migrate": wrong.Migrate(ctx),
			}
			_, checks["Append"] = wrong.Append(ctx, "s", event.Any, note)
			_, checks["Append to a new stream"] = wrong.Append(ctx, "t", event.NoStream, note)
			if tc.use == eventstore.OrderingXID {
				_, checks["Head"] = wrong.Head(ctx)
				_, checks["Horizon"] = wrong.Horizon(ctx)
			}
			for op, err := range checks {
				if !errors.Is(err, eventstore.ErrOrderingMismatch) {
					t.Errorf("%s with %v ordering on a %v database = %v, want ErrOrderingMismatch", op, tc.use, tc.migrated, err)
				} else if !strings.Contains(err.Error(), "migrated with "+tc.migrated.String()) {
					t.Errorf("%s: %q does not say the database's ordering", op, err)
				}
			}
			// Nothing was written, and the right store still works.
			testkit.CheckEvents(t, "ReadAll", testkit.MustCollect(t, "ReadAll", first.ReadAll(ctx, 0, 0)), stored)
			testkit.Migrate(t, openStore(t, db, eventstore.Options{Ordering: tc.migrated}))
			testkit.MustAppend(t, first, "s", event.Exact(1), note)
		})
	}
	t.Run("xid_on_sqlite", func(t *testing.T) {
		db := testdb.New(t, testdb.SQLite)
		_, err := eventstore.New(db.Gorm, testkit.NewRegistry(), eventstore.Options{Ordering: eventstore.OrderingXID})
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("New(SQLite, OrderingXID) = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("options", func(t *testing.T) {
		for _, o := range []eventstore.Options{
			{Ordering: eventstore.Ordering(7)},
			{Ordering: eventstore.OrderingXID, MaxBatchEvents: eventstore.MaxXIDTransactionEvents + 1},
			{HorizonWait: -time.Second},
		} {
			if err := o.Validate(); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%+v.Validate() = %v, want ErrInvalidArgument", o, err)
			}
		}
	})
}

// Under OrderingXID an event's position is its transaction's ID times
// 65,536 plus its place in the transaction: the events of an append are
// consecutive, and every append's come after those of the appends that
// returned before it.
func TestXIDPositions(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	db := testdb.New(t, testdb.Postgres)
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), xidOpts)
	ctx := t.Context()
	var all []event.Event
	for i := range 5 {
		got := testkit.MustAppend(t, s, "s", event.Exact(int64(3*i)), []any{testkit.Noted{}, testkit.Noted{}, testkit.Noted{}})
		for j, e := range got {
			if j > 0 && e.Position != got[0].Position+int64(j) {
				t.Errorf("append %d: positions %s, want consecutive", i, testkit.Places(got))
			}
		}
		if len(all) > 0 && got[0].Position <= all[len(all)-1].Position {
			t.Errorf("append %d at %d, after an append at %d", i, got[0].Position, all[len(all)-1].Position)
		}
		all = append(all, got...)
		if h := testkit.Head(t, s); h != got[2].Position {
			t.Errorf("Head() = %d after an append at %s, want its last position", h, testkit.Places(got))
		}
	}
	var xid int64
	if err := db.Gorm.Raw("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").Scan(&xid).Error; err != nil {
		t.Fatal(err)
	}
	if last := all[len(all)-1].Position; last>>16 >= xid || last < 1<<16 {
		t.Errorf("last position %d is transaction %d, event %d; the next transaction is %d", last, last>>16, last&0xffff, xid)
	}
	testkit.CheckEvents(t, "ReadAll", testkit.MustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0)), all)
	for _, c := range []struct{ from, to, want int64 }{
		{0, all[14].Position, 15},
		{all[2].Position, all[14].Position, 12},
		{all[2].Position + 1, all[3].Position - 1, 0},
		{all[3].Position, all[2].Position, 0},
	} {
		if n, err := s.Distance(ctx, c.from, c.to); err != nil || n != c.want {
			t.Errorf("Distance(%d, %d) = %d, %v; want %d", c.from, c.to, n, err, c.want)
		}
	}

	big := make([]any, eventstore.MaxXIDTransactionEvents+1)
	for i := range big {
		big[i] = testkit.Noted{}
	}
	if _, err := s.Append(ctx, "big", event.NoStream, big); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Errorf("Append(%d events) = %v, want ErrInvalidArgument", len(big), err)
	}
	if h := testkit.Head(t, s); h != all[len(all)-1].Position {
		t.Errorf("Head() = %d after a refused append, want %d", h, all[len(all)-1].Position)
	}
}

// A transaction that has written and stays open holds every reader back
// (the events committed after it began stay unread) until it ends;
// Horizon names it meanwhile, and reads stop waiting for it after
// HorizonWait.
func TestXIDHorizonHeld(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	db := testdb.New(t, testdb.Postgres)
	var logs syncBuffer
	opts := eventstore.Options{Ordering: eventstore.OrderingXID, HorizonWait: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), opts)
	ctx := t.Context()
	before := testkit.MustAppend(t, s, "s", event.NoStream, []any{testkit.Noted{Text: "before"}})

	// Another application's session: it writes, then idles in its
	// transaction.
	other, err := sql.Open("pgx", db.DSN+"&application_name=long_batch_job")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var holder, pid int64
	if err := tx.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text::bigint, pg_backend_pid()").Scan(&holder, &pid); err != nil {
		t.Fatal(err)
	}
	after := testkit.MustAppend(t, s, "s", event.Exact(1), []any{testkit.Noted{Text: "after"}})
	sub := testkit.Follow(ctx, s, 0)

	// Other transactions on the server may hold the horizon for a moment
	// too; ours stays.
	var hz eventstore.Horizon
	testkit.Eventually(t, 10*time.Second, "the open transaction holds the horizon", func() bool {
		hz, err = s.Horizon(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return hz.XID == holder
	})
	time.Sleep(time.Second)
	if hz, err = s.Horizon(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", hz)
	if !hz.Held || hz.PID != int(pid) || hz.Application != "long_batch_job" || hz.State != "idle in transaction" ||
		hz.HeldFor < time.Second || hz.Head != after[0].Position || hz.Readable != before[0].Position || hz.XID != holder {
		t.Errorf("Horizon() = %+v, want held by transaction %d (pid %d, long_batch_job, idle in transaction) for 1s or more, readable %d, head %d",
			hz, holder, pid, before[0].Position, after[0].Position)
	}
	if !strings.Contains(hz.String(), "horizon held by transaction") {
		t.Errorf("Horizon().String() = %q", hz.String())
	}

	// Reads give up waiting after HorizonWait, with what is readable, and
	// say why in the log.
	if h := testkit.Head(t, s); h != before[0].Position {
		t.Errorf("Head() = %d while held, want the readable %d", h, before[0].Position)
	}
	testkit.CheckEvents(t, "ReadAll while held", testkit.MustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0)), before)
	if !strings.Contains(logs.String(), "holds the readers of the store back") || !strings.Contains(logs.String(), "long_batch_job") {
		t.Errorf("log:\n%s\nwant a warning naming the transaction", logs.String())
	}
	if n, _ := sub.Progress(); n != 1 {
		t.Errorf("Subscribe got %d events while held, want 1", n)
	}

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	want := append(before, after...)
	got := sub.Await(t, want)
	testkit.CheckEvents(t, "Subscribe", got, want)
	if hz, err = s.Horizon(ctx); err != nil || hz.Head != after[0].Position {
		t.Errorf("Horizon() = %+v, %v after the commit, want head %d", hz, err, after[0].Position)
	}
}

// Horizon under lock ordering, and on SQLite: nothing holds the readers.
func TestHorizonLock(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
		got := testkit.MustAppend(t, s, "s", event.NoStream, []any{testkit.Noted{}})
		hz, err := s.Horizon(t.Context())
		if err != nil || hz.Held || hz.Head != got[0].Position || hz.Readable != hz.Head || hz.Ordering != eventstore.OrderingLock {
			t.Errorf("Horizon() = %+v, %v; want head and readable %d, not held", hz, err, got[0].Position)
		}
		if n, err := s.Distance(t.Context(), 3, 10); err != nil || n != 7 {
			t.Errorf("Distance(3, 10) = %d, %v; want 7 (positions are nearly contiguous)", n, err)
		}
	})
}

// A database restored into another cluster finds transaction IDs below
// its positions: appends fail until Migrate moves the positions past the
// stored ones, and the order holds across.
func TestXIDRestoredIntoAnotherCluster(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	db := testdb.New(t, testdb.Postgres)
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), xidOpts)
	old := testkit.MustAppend(t, s, "s", event.NoStream, []any{testkit.Noted{}, testkit.Noted{}})
	// What the other cluster's transaction IDs made: far above this one's.
	if err := db.Gorm.Exec("UPDATE cairn_events SET position = position + (1::bigint << 50)").Error; err != nil {
		t.Fatal(err)
	}
	restored := openStore(t, db, xidOpts)
	ctx := t.Context()
	if _, err := restored.Append(ctx, "s", event.Exact(2), []any{testkit.Noted{}}); err == nil || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Append on a restored database = %v, want an error that says to migrate", err)
	}
	testkit.Migrate(t, restored)
	got := testkit.MustAppend(t, restored, "s", event.Exact(2), []any{testkit.Noted{}})
	if got[0].Position <= old[1].Position+1<<50 {
		t.Errorf("append at %d after Migrate, want after the stored %d", got[0].Position, old[1].Position+1<<50)
	}
	all := testkit.MustCollect(t, "ReadAll", restored.ReadAll(ctx, 0, 0))
	testkit.CheckOrder(t, "ReadAll", all)
	if len(all) != 3 || all[2].ID != got[0].ID {
		t.Errorf("ReadAll() = %s, want the 2 restored events and the new one", testkit.Places(all))
	}
	if h := testkit.Head(t, restored); h != got[0].Position {
		t.Errorf("Head() = %d, want %d", h, got[0].Position)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// DropTables removes the recorded ordering with the tables: the database
// can then be migrated again, with either ordering.
func TestXIDDropTables(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	db := testdb.New(t, testdb.Postgres)
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), xidOpts)
	testkit.MustAppend(t, s, "s", event.NoStream, []any{testkit.Noted{}})
	if err := s.DropTables(t.Context()); err != nil {
		t.Fatalf("DropTables() = %v", err)
	}
	lock := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
	got := testkit.MustAppend(t, lock, "s", event.NoStream, []any{testkit.Noted{}})
	if got[0].Position != 1 {
		t.Errorf("first append after DropTables and Migrate with lock ordering at %d, want 1", got[0].Position)
	}
	if _, err := s.Append(t.Context(), "s", event.Any, []any{testkit.Noted{}}); !errors.Is(err, eventstore.ErrOrderingMismatch) {
		t.Errorf("Append with xid ordering after the database was migrated again with lock = %v, want ErrOrderingMismatch", err)
	}
}

// AppendTx under OrderingXID: two appends in one transaction get
// consecutive positions after each other, concurrent appends do not wait
// for the transaction, and readers get everything in order once it
// commits.
func TestXIDAppendTx(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	db := testdb.New(t, testdb.Postgres)
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), xidOpts)
	ctx := t.Context()
	sub := testkit.Follow(ctx, s, 0)
	var inTx []event.Event
	err := s.Transaction(ctx, func(tx *gorm.DB) error {
		a, err := s.AppendTx(ctx, tx, "a", event.NoStream, []any{testkit.Noted{}, testkit.Noted{}})
		if err != nil {
			return err
		}
		b, err := s.AppendTx(ctx, tx, "b", event.NoStream, []any{testkit.Noted{}})
		if err != nil {
			return err
		}
		inTx = append(a, b...)
		// Another append commits meanwhile, without waiting.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := s.Append(wctx, "c", event.NoStream, []any{testkit.Noted{}}); err != nil {
			return fmt.Errorf("Append while a transaction appends: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Transaction() = %v", err)
	}
	for i, e := range inTx {
		if e.Position != inTx[0].Position+int64(i) {
			t.Errorf("positions in one transaction %s, want consecutive", testkit.Places(inTx))
			break
		}
	}
	all := testkit.MustCollect(t, "ReadAll", s.ReadAll(ctx, 0, 0))
	testkit.CheckOrder(t, "ReadAll", all)
	if len(all) != 4 {
		t.Fatalf("ReadAll() = %s, want 4 events", testkit.Places(all))
	}
	got := sub.Await(t, all)
	testkit.CheckEvents(t, "Subscribe", got, all)
}
