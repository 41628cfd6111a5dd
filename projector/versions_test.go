package projector_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// snapshot is what one query through the accounts view saw: the position
// of the projector that follows the active version, and the accounts, read
// in one statement (so from one snapshot of the database).
type snapshot struct {
	position int64
	accounts map[string]testkit.Account
}

func readSnapshot(ctx context.Context, db *gorm.DB, view, processor string) (snapshot, error) {
	rows, err := db.WithContext(ctx).Raw(`SELECT p.position, a.id, a.balance, a.events FROM cairn_processor_positions p
		LEFT JOIN `+view+` a ON 1 = 1 WHERE p.name = ?`, processor).Rows()
	if err != nil {
		return snapshot{}, err
	}
	defer rows.Close()
	s := snapshot{accounts: map[string]testkit.Account{}}
	for rows.Next() {
		var id sql.NullString
		var balance, events sql.NullInt64
		if err := rows.Scan(&s.position, &id, &balance, &events); err != nil {
			return snapshot{}, err
		}
		if id.Valid {
			s.accounts[id.String] = testkit.Account{Balance: int(balance.Int64), Events: int(events.Int64)}
		}
	}
	return s, rows.Err()
}

// viewReader queries the accounts view in a loop, as an application
// would, and keeps what it saw.
type viewReader struct {
	stop  context.CancelFunc
	done  chan struct{}
	snaps []snapshot
	errs  []error
}

func startViewReader(t *testing.T, db *gorm.DB, view, processor string) *viewReader {
	ctx, cancel := context.WithCancel(t.Context())
	r := &viewReader{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			s, err := readSnapshot(ctx, db, view, processor)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				r.errs = append(r.errs, err)
			default:
				r.snaps = append(r.snaps, s)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// finish stops the reader and checks what it saw: no error, never an
// empty view, positions that never go back, and at each position exactly
// the fold of the events up to it — never a partial build.
func (r *viewReader) finish(t *testing.T, s *eventstore.Store) {
	t.Helper()
	r.stop()
	<-r.done
	for i, err := range r.errs {
		if i < 5 {
			t.Errorf("query through the view: %v", err)
		}
	}
	if len(r.errs) > 0 {
		t.Errorf("%d of %d queries failed", len(r.errs), len(r.errs)+len(r.snaps))
	}
	if len(r.snaps) < 10 {
		t.Fatalf("only %d queries answered", len(r.snaps))
	}
	for i, sn := range r.snaps {
		if len(sn.accounts) == 0 {
			t.Fatalf("query %d (at position %d) saw an empty view", i, sn.position)
		}
		if i > 0 && sn.position < r.snaps[i-1].position {
			t.Fatalf("query %d saw position %d after query %d saw %d: the view went back", i, sn.position, i-1, r.snaps[i-1].position)
		}
	}
	// One pass over the events, comparing each answer with the fold up
	// to its position.
	fold := map[string]testkit.Account{}
	next := 0
	check := func(upTo int64) {
		for ; next < len(r.snaps) && r.snaps[next].position <= upTo; next++ {
			if sn := r.snaps[next]; !maps.Equal(sn.accounts, fold) {
				t.Fatalf("query %d at position %d saw %d accounts, not the fold of the events up to it (%d accounts)", next, sn.position, len(sn.accounts), len(fold))
			}
		}
	}
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		check(e.Position - 1)
		a := fold[e.StreamID]
		switch d := e.Data.(type) {
		case testkit.Deposited:
			a.Balance += d.Amount
		case testkit.Withdrawn:
			a.Balance -= d.Amount
		default:
			continue
		}
		a.Events++
		fold[e.StreamID] = a
	}
	check(1 << 62)
	t.Logf("%d queries through the view, positions %d to %d", len(r.snaps), r.snaps[0].position, r.snaps[len(r.snaps)-1].position)
}

// trickle appends a deposit every few milliseconds until the test ends or
// stop is called: the new events an application keeps writing.
func trickle(t *testing.T, s *eventstore.Store) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := s.Append(ctx, fmt.Sprintf("acct-new-%d", i%7), event.Any, []any{testkit.Deposited{Amount: 1 + i%5}}); err != nil && ctx.Err() == nil {
				t.Errorf("Append() = %v", err)
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// runOwned runs p under a lease with the given owner until the test ends.
func runOwned(t *testing.T, p *projector.Projector, owner string) (stop func() error) {
	return testkit.RunInBackground(t, ownedRun{p, processing.Ownership{Owner: owner, LeaseDuration: 2 * time.Second}})
}

type ownedRun struct {
	p interface {
		RunOwned(context.Context, processing.Ownership) error
	}
	o processing.Ownership
}

func (r ownedRun) Run(ctx context.Context) error { return r.p.RunOwned(ctx, r.o) }

// waitPosition waits until the saved position of the processor name
// reaches position.
func waitPosition(t *testing.T, s *eventstore.Store, name string, position int64) {
	t.Helper()
	testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("%s at %d", name, position), func() bool {
		_, pos, err := s.LeaseHolder(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		return pos >= position
	})
}

// waitActive waits until label is the active version of p and nothing is
// being built.
func waitActive(t *testing.T, p *projector.Projector, label string) projector.Versions {
	t.Helper()
	var vs projector.Versions
	testkit.Eventually(t, 2*time.Minute, "version "+label+" active", func() bool {
		var err error
		if vs, err = p.Versions(t.Context()); err != nil {
			t.Fatal(err)
		}
		return vs.Active != nil && vs.Active.Label == label && vs.Build == nil
	})
	return vs
}

func head(t *testing.T, s *eventstore.Store) int64 {
	t.Helper()
	h, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func labels(vs []eventstore.ProjectionVersion) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Label+":"+string(v.State))
	}
	return out
}

func versionedOptions(version int) testkit.AccountsOptions {
	return testkit.AccountsOptions{
		Processing: processing.Options{BatchSize: 250, ErrorHandler: processing.NoRetry{}},
		Version:    version, DropAfter: -1, PollInterval: 50 * time.Millisecond,
	}
}

func TestTable(t *testing.T) {
	if got := projector.Table(t.Context(), "todos"); got != "todos" {
		t.Errorf("Table(no version, %q) = %q, want it unchanged", "todos", got)
	}
}

// TestFirstVersion: a new versioned projector's first version is active
// at once, its tables named after it, the queries reading them through
// views named like the tables.
func TestFirstVersion(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 3000, 20, 100)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", versionedOptions(3))
		vs, err := s.ProjectionVersions(t.Context(), "accounts")
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 1 || vs[0].Label != "v3" || vs[0].State != eventstore.ProjectionActive || vs[0].Version != 3 ||
			!slices.Equal(vs[0].Tables, []string{"accounts", "accounts_applied"}) || vs[0].SwappedAt.IsZero() {
			t.Fatalf("ProjectionVersions() = %+v, want v3 active with its two tables", vs)
		}
		// Migrate again changes nothing.
		if err := p.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		runOwned(t, p, "one")
		testkit.WaitFor(t, p, head(t, s))
		want := testkit.FoldAccounts(t, s, 0)
		checkAccounts(t, db.Gorm, "accounts", want)
		checkAccounts(t, db.Gorm, "accounts_v3", want)
		if _, ok := p.Building(); ok {
			t.Errorf("Building() reports a build; want none")
		}
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		v := waitActive(t, p, "v3r1")
		if len(v.Retired) != 1 || v.Retired[0].Label != "v3" || v.Code != 3 {
			t.Errorf("Versions() = %+v, want v3 retired", v)
		}
		testkit.WaitFor(t, p, head(t, s))
		checkAccounts(t, db.Gorm, "accounts", want)
		checkAccounts(t, db.Gorm, "accounts_v3r1", want)
	})
}

// TestRebuildServesThroughout rebuilds a projection that two processes
// run while an application keeps writing events and querying the view:
// every answer is the fold of the events up to the position it was
// answered at (never a partial build, never going back); the new version
// is built in one process, swapped in once, and equals the events after
// the swap; its builder is reported while it builds.
func TestRebuildServesThroughout(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 20_000, 40, 500)
		opts := versionedOptions(1)
		opts.BatchDelay = 2 * time.Millisecond
		a := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		b := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		runOwned(t, a, "process-a")
		runOwned(t, b, "process-b")
		waitPosition(t, s, "accounts", head(t, s))

		reader := startViewReader(t, db.Gorm, "accounts", "accounts")
		stopWriting := trickle(t, s)
		if err := a.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Both processes see the build; one builds, the other stands by.
		var sawRunning, sawProgress bool
		testkit.Eventually(t, 2*time.Minute, "the rebuild swapped in", func() bool {
			for _, p := range []*projector.Projector{a, b} {
				if bs, ok := p.Building(); ok {
					sawRunning = sawRunning || (bs.State == processing.Running && bs.Name == "accounts@v1r1" && bs.Label == "v1r1" && bs.Version == 1)
				}
			}
			vs, err := a.Versions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if vs.Build != nil && vs.Build.Position > 0 && vs.Build.Head > vs.Build.Position && vs.Build.Owner != "" {
				sawProgress = true
			}
			return vs.Active.Label == "v1r1" && vs.Build == nil
		})
		if !sawRunning || !sawProgress {
			t.Errorf("during the build: Building() running %v, Versions() with progress %v; want both", sawRunning, sawProgress)
		}
		time.Sleep(50 * time.Millisecond) // a few answers after the swap
		stopWriting()
		waitPosition(t, s, "accounts", head(t, s))
		reader.finish(t, s)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))

		vs, err := s.ProjectionVersions(t.Context(), "accounts")
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(vs); !slices.Equal(got, []string{"v1:retired", "v1r1:active"}) {
			t.Errorf("versions after the rebuild = %v, want v1 retired and v1r1 active", got)
		}
		dropped, err := a.DropRetired(t.Context())
		if err != nil || len(dropped) != 1 || dropped[0].Label != "v1" {
			t.Errorf("DropRetired() = %v, %v; want v1 dropped", dropped, err)
		}
		if err := db.Gorm.Exec(`SELECT count(*) FROM accounts_v1`).Error; err == nil {
			t.Errorf("accounts_v1 is still there after DropRetired")
		}
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
	})
}

// accountsV2 is version 2 of the accounts projection: a new column
// (deposits) and changed handlers that fill it.
func accountsV2(t *testing.T, s *eventstore.Store) *projector.Projector {
	t.Helper()
	p, err := projector.New(s, "accounts", projector.Options{
		Processing: processing.Options{BatchSize: 250, ErrorHandler: processing.NoRetry{}, Logger: testkit.Logger(t)},
		Version:    2, DropAfter: -1, PollInterval: 50 * time.Millisecond,
		Tables: []string{"accounts", "accounts_applied"},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			if err := tx.Exec(`CREATE TABLE IF NOT EXISTS ` + projector.Table(ctx, "accounts") + ` (id text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL, deposits bigint NOT NULL)`).Error; err != nil {
				return err
			}
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + projector.Table(ctx, "accounts_applied") + ` (position bigint NOT NULL, owner text NOT NULL)`).Error
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(ctx context.Context, tx *gorm.DB, e event.Event, amount, deposit int) error {
		tb := projector.Table(ctx, "accounts")
		return tx.Exec(`INSERT INTO `+tb+` (id, balance, events, deposits) VALUES (?, ?, 1, ?)
			ON CONFLICT (id) DO UPDATE SET balance = `+tb+`.balance + excluded.balance, events = `+tb+`.events + 1, deposits = `+tb+`.deposits + excluded.deposits`,
			e.StreamID, amount, deposit).Error
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited) error {
		return apply(ctx, tx, e, d.Amount, 1)
	})
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Withdrawn) error {
		return apply(ctx, tx, e, -d.Amount, 0)
	})
	return p
}

// TestVersionBump deploys version 2 of a projection (a new column, changed
// handlers) while a process of version 1 serves and follows: version 1
// serves every query until version 2 has caught up and is swapped in; the
// old process then stands by.
func TestVersionBump(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 20_000, 40, 500)
		old := testkit.AccountsProjector(t, s, "accounts", "accounts", versionedOptions(1))
		runOwned(t, old, "old")
		testkit.WaitFor(t, old, head(t, s))

		reader := startViewReader(t, db.Gorm, "accounts", "accounts")
		stopWriting := trickle(t, s)

		// The deployment: the new code migrates (its version's tables are
		// created beside the active ones), then runs.
		v2 := accountsV2(t, s)
		if err := v2.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		vs, err := v2.Versions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if vs.Active == nil || vs.Active.Label != "v1" || vs.Build == nil || vs.Build.Label != "v2" || vs.Code != 2 {
			t.Fatalf("Versions() after the new code's Migrate = %+v, want v1 active and v2 building", vs)
		}
		if err := old.Rebuild(t.Context()); !errors.Is(err, projector.ErrOutdated) {
			t.Errorf("Rebuild() of the old code during the build of v2 = %v, want ErrOutdated", err)
		}
		runOwned(t, v2, "new")
		waitActive(t, v2, "v2")
		testkit.Eventually(t, time.Minute, "the old process standing by", func() bool {
			return old.Status().State == processing.Standby
		})
		time.Sleep(50 * time.Millisecond)
		stopWriting()
		testkit.WaitFor(t, v2, head(t, s))
		reader.finish(t, s)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))

		// The new column, through the view.
		var got []struct {
			ID       string
			Deposits int
		}
		if err := db.Gorm.Raw(`SELECT id, deposits FROM accounts`).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for e, err := range s.ReadAll(t.Context(), 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := e.Data.(testkit.Deposited); ok {
				want[e.StreamID]++
			}
		}
		for _, r := range got {
			if r.Deposits != want[r.ID] {
				t.Errorf("deposits of %s = %d, want %d", r.ID, r.Deposits, want[r.ID])
			}
		}
		if len(got) == 0 {
			t.Errorf("no rows with the new column")
		}
		// The old process does not write: its version's tables stay as
		// the swap left them, and Migrate of its code changes nothing.
		if err := old.Migrate(t.Context()); err != nil {
			t.Errorf("Migrate() of the old code after the swap = %v", err)
		}
		vsAfter, err := s.ProjectionVersions(t.Context(), "accounts")
		if err != nil {
			t.Fatal(err)
		}
		if got := labels(vsAfter); !slices.Equal(got, []string{"v1:retired", "v2:active"}) {
			t.Errorf("versions = %v, want v1 retired and v2 active", got)
		}
	})
}

// TestAdoptUnversioned: a projector that was not versioned hands its
// tables over as version 0 to its first versioned deployment; they serve
// until version 1 has caught up.
func TestAdoptUnversioned(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 10_000, 30, 500)
		legacy := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		stop := testkit.RunInBackground(t, legacy)
		testkit.WaitFor(t, legacy, head(t, s))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		at := head(t, s)
		testkit.Fill(t, s, 2000, 30, 500) // not seen by version 0 yet

		p := testkit.AccountsProjector(t, s, "accounts", "accounts", versionedOptions(1))
		vs, err := p.Versions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if vs.Active == nil || vs.Active.Label != "v0" || vs.Active.Version != 0 || vs.Build == nil || vs.Build.Label != "v1" {
			t.Fatalf("Versions() = %+v, want v0 active (adopted) and v1 building", vs)
		}
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, at))
		checkAccounts(t, db.Gorm, "accounts_v0", testkit.FoldAccounts(t, s, at))
		runOwned(t, p, "new")
		waitActive(t, p, "v1")
		testkit.WaitFor(t, p, head(t, s))
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
	})
}

// TestRebuildErrors: Rebuild of a projector that is not versioned, and of
// an outdated one.
func TestRebuildErrors(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	plain := testkit.AccountsProjector(t, s, "plain", "plain", testkit.AccountsOptions{})
	if err := plain.Rebuild(t.Context()); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("Rebuild() of an unversioned projector = %v, want ErrInvalid", err)
	}
	testkit.AccountsProjector(t, s, "accounts", "accounts", versionedOptions(2))
	old := testkit.AccountsProjector(t, s, "accounts", "accounts", versionedOptions(1)) // Migrate: no change
	if err := old.Rebuild(t.Context()); !errors.Is(err, projector.ErrOutdated) {
		t.Errorf("Rebuild() of version 1 while 2 is active = %v, want ErrOutdated", err)
	}
	vs, err := s.ProjectionVersions(t.Context(), "accounts")
	if err != nil {
		t.Fatal(err)
	}
	if got := labels(vs); !slices.Equal(got, []string{"v2:active"}) {
		t.Errorf("versions = %v, want v2 active only", got)
	}
	_, err = projector.New(s, "x", projector.Options{Version: 1})
	if !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("New(Version 1 without Tables and Setup) = %v, want ErrInvalid", err)
	}
}

// TestBuildFailure: a build whose error handler gives up stops and is
// reported failed while the active version serves and follows; Rebuild
// tries it again, from where it stopped.
func TestBuildFailure(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 3000, 20, 100)
		var failures atomic.Int32
		failures.Store(1)
		p, err := projector.New(s, "deposits", projector.Options{
			Processing: processing.Options{BatchSize: 100, ErrorHandler: processing.NoRetry{}, Logger: testkit.Logger(t)},
			Version:    1, DropAfter: -1, PollInterval: 20 * time.Millisecond,
			Tables: []string{"deposits"},
			Setup: func(ctx context.Context, tx *gorm.DB) error {
				return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + projector.Table(ctx, "deposits") + ` (position bigint PRIMARY KEY)`).Error
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, _ testkit.Deposited) error {
			if projector.Table(ctx, "deposits") == "deposits_v1r1" && e.Position > 1500 && failures.Add(-1) >= 0 {
				return errors.New("boom")
			}
			return tx.Exec(`INSERT INTO `+projector.Table(ctx, "deposits")+` (position) VALUES (?)`, e.Position).Error
		})
		if err := p.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		runOwned(t, p, "one")
		testkit.WaitFor(t, p, head(t, s))
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		var b processing.Build
		testkit.Eventually(t, time.Minute, "the build failed", func() bool {
			var ok bool
			b, ok = p.Building()
			return ok && b.State == processing.Failed
		})
		if b.LastError == nil || !strings.Contains(b.LastError.Error(), "boom") || b.Position < 1400 || b.Position > 1500 {
			t.Errorf("Building() = %+v, want failed on boom, at the batch before the failing event", b)
		}
		// The active version follows meanwhile.
		testkit.MustAppend(t, s, "acct-x", event.Any, []any{testkit.Deposited{Amount: 1}})
		testkit.WaitFor(t, p, head(t, s))
		if st := p.Status(); st.State != processing.Running {
			t.Errorf("Status() = %+v, want the follower running", st)
		}
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitActive(t, p, "v1r1")
		testkit.WaitFor(t, p, head(t, s))
		var n, want int
		if err := db.Gorm.Raw(`SELECT count(*) FROM deposits`).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		for e, err := range s.ReadAll(t.Context(), 0, 0, testkit.TypeDeposited) {
			if err != nil {
				t.Fatal(err)
			}
			_ = e
			want++
		}
		if n != want {
			t.Errorf("deposits after the rebuild = %d rows, want %d", n, want)
		}
	})
}

// TestRebuildBatched rebuilds a projection that collects its rows in its
// handlers and writes them in the Flush hook, from state kept in the
// projector's closure, while the follower follows new events in the same
// process: the two never mix their batches.
func TestRebuildBatched(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 20_000, 40, 1000)
		p := versionedLedger(t, s, true, 2*time.Millisecond)
		runOwned(t, p, "one")
		testkit.WaitFor(t, p, head(t, s))
		stopWriting := trickle(t, s)
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitActive(t, p, "v1r1")
		stopWriting()
		testkit.WaitFor(t, p, head(t, s))
		var got struct{ N, Sum int64 }
		if err := db.Gorm.Raw(`SELECT count(*) AS n, COALESCE(SUM(amount), 0) AS sum FROM ledger`).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		var want struct{ N, Sum int64 }
		for e, err := range s.ReadAll(t.Context(), 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			switch d := e.Data.(type) {
			case testkit.Deposited:
				want.N, want.Sum = want.N+1, want.Sum+int64(d.Amount)
			case testkit.Withdrawn:
				want.N, want.Sum = want.N+1, want.Sum-int64(d.Amount)
			}
		}
		if got != want {
			t.Errorf("ledger after the rebuild: %d rows summing to %d, want %d summing to %d", got.N, got.Sum, want.N, want.Sum)
		}
	})
}

// TestRebuildParks: a build that parks a poison event hands it over, at
// the swap, to the projector, whose retry then applies it to the new
// version; the events the old version parked are forgotten with it.
func TestRebuildParks(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 3000, 20, 100)
		var poison atomic.Int64 // the position that fails, 0 for none
		opts := versionedOptions(1)
		opts.Processing.Park = true
		opts.Fail = func(e event.Event) error {
			if e.Position == poison.Load() {
				return errors.New("poison")
			}
			return nil
		}
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		runOwned(t, p, "one")
		testkit.WaitFor(t, p, head(t, s))

		var bad event.Event
		for e, err := range s.ReadAll(t.Context(), 1000, 0, testkit.TypeDeposited) {
			if err != nil {
				t.Fatal(err)
			}
			bad = e
			break
		}
		poison.Store(bad.Position)
		if err := p.Rebuild(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitActive(t, p, "v1r1")
		testkit.WaitFor(t, p, head(t, s))
		parked, err := s.ParkedEvents(t.Context(), "accounts", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(parked) == 0 || parked[0].Position != bad.Position {
			t.Fatalf("the projector's parked events after the swap = %+v, want those the build parked from %d", parked, bad.Position)
		}
		for _, pk := range parked {
			if pk.StreamID != bad.StreamID {
				t.Errorf("parked %+v, want only the events of %s (the poison's and those behind it)", pk, bad.StreamID)
			}
		}
		if left, err := s.ParkedEvents(t.Context(), "accounts@v1r1", "", 0); err != nil || len(left) != 0 {
			t.Errorf("the builder's parked events after the swap = %+v, %v; want none", left, err)
		}
		// The stream's later events are parked behind it.
		without := testkit.FoldAccounts(t, s, 0)
		if got := testkit.ReadAccounts(t, db.Gorm, "accounts")[bad.StreamID]; got == without[bad.StreamID] {
			t.Errorf("account %s = %+v with its poison event parked, want it behind the fold", bad.StreamID, got)
		}
		poison.Store(0)
		if _, err := p.RetryParked(t.Context(), bad.StreamID); err != nil {
			t.Fatal(err)
		}
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
		checkAccounts(t, db.Gorm, "accounts_v1r1", testkit.FoldAccounts(t, s, 0))
	})
}
