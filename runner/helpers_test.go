package runner_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
	"github.com/cairnhq/cairn/runner"
)

// The events of the tests: deposits to and withdrawals from accounts,
// whose stream is the account.
type Deposited struct {
	Amount int `json:"amount"`
}

type Withdrawn struct {
	Amount int `json:"amount"`
}

// Noted is an event no test projector handles.
type Noted struct {
	Text string `json:"text"`
}

func newRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Deposited](reg, "deposited")
	event.MustRegister[Withdrawn](reg, "withdrawn")
	event.MustRegister[Noted](reg, "noted")
	return reg
}

// newStore returns a migrated store over db.
func newStore(t testing.TB, db *gorm.DB, log *slog.Logger) *eventstore.Store {
	t.Helper()
	s, err := eventstore.New(db, newRegistry(), eventstore.Options{Logger: log, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("eventstore.New() = %v, want nil", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return s
}

// fill appends n events to streams acct-0 … acct-(streams-1), chunk events
// per append: deposits of 1…9, every fifth a withdrawal, every seventh a
// note. It returns the last position.
func fill(t testing.TB, s *eventstore.Store, n, streams, chunk int) int64 {
	t.Helper()
	var last int64
	k := 0
	for k < n {
		stream := fmt.Sprintf("acct-%d", (k/chunk)%streams)
		batch := make([]any, 0, chunk)
		for ; len(batch) < chunk && k < n; k++ {
			switch {
			case k%7 == 6:
				batch = append(batch, Noted{Text: "n"})
			case k%5 == 4:
				batch = append(batch, Withdrawn{Amount: k%3 + 1})
			default:
				batch = append(batch, Deposited{Amount: k%9 + 1})
			}
		}
		evs, err := s.Append(t.Context(), stream, event.Any, batch)
		if err != nil {
			t.Fatalf("Append(%s) = %v, want nil", stream, err)
		}
		last = evs[len(evs)-1].Position
	}
	return last
}

// account is a row of the accounts projection.
type account struct {
	Balance int
	Events  int
}

// accountsOptions configures accountsProjector.
type accountsOptions struct {
	processing processing.Options
	// owner, when set, is recorded with the position of each event
	// projected, in the table <table>_applied, in the batch's
	// transaction: which process committed what.
	owner string
	// batchDelay slows every batch down, to catch the projector in the
	// middle of its catch-up.
	batchDelay time.Duration
}

// accountsProjector projects balances into table, with an upsert per
// event: a lost or doubled event shows in the result.
func accountsProjector(t testing.TB, s projector.Store, name, table string, o accountsOptions) *projector.Projector {
	t.Helper()
	p, err := projector.New(s, name, projector.Options{
		Processing: o.processing,
		Tables:     []string{table, table + "_applied"},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			if err := tx.Exec(`CREATE TABLE IF NOT EXISTS ` + table + ` (id text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL)`).Error; err != nil {
				return err
			}
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + table + `_applied (position bigint NOT NULL, owner text NOT NULL)`).Error
		},
		Begin: func(ctx context.Context, tx *gorm.DB) error {
			if o.batchDelay <= 0 {
				return nil
			}
			t := time.NewTimer(o.batchDelay)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		},
	})
	if err != nil {
		t.Fatalf("projector.New() = %v, want nil", err)
	}
	upsert := `INSERT INTO ` + table + ` (id, balance, events) VALUES (?, ?, 1)
		ON CONFLICT (id) DO UPDATE SET balance = ` + table + `.balance + excluded.balance, events = ` + table + `.events + 1`
	apply := func(tx *gorm.DB, e event.Event, amount int) error {
		if err := tx.Exec(upsert, e.StreamID, amount).Error; err != nil {
			return err
		}
		if o.owner == "" {
			return nil
		}
		return tx.Exec(`INSERT INTO `+table+`_applied (position, owner) VALUES (?, ?)`, e.Position, o.owner).Error
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d Deposited) error {
		return apply(tx, e, d.Amount)
	})
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d Withdrawn) error {
		return apply(tx, e, -d.Amount)
	})
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return p
}

// readAccounts returns the rows of an accounts table.
func readAccounts(t testing.TB, db *gorm.DB, table string) map[string]account {
	t.Helper()
	rows, err := db.Raw(`SELECT id, balance, events FROM ` + table).Rows()
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	got := make(map[string]account)
	for rows.Next() {
		var id string
		var a account
		if err := rows.Scan(&id, &a.Balance, &a.Events); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		got[id] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return got
}

// foldAccounts computes the accounts projection from the store's events
// up to position through.
func foldAccounts(t testing.TB, s *eventstore.Store, through int64) map[string]account {
	t.Helper()
	want := make(map[string]account)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatalf("ReadAll() = %v", err)
		}
		if e.Position > through {
			break
		}
		a := want[e.StreamID]
		switch d := e.Data.(type) {
		case Deposited:
			a.Balance += d.Amount
		case Withdrawn:
			a.Balance -= d.Amount
		default:
			continue
		}
		a.Events++
		want[e.StreamID] = a
	}
	return want
}

func checkAccounts(t testing.TB, got, want map[string]account) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("projection has %d accounts, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; g != w {
			t.Errorf("account %s = %+v, want %+v", id, g, w)
		}
	}
}

// leaseRow is a processor's row of the position table (zero before it
// has one).
type leaseRow struct {
	Position int64
	Epoch    int64
	Owner    string
}

func readLease(t testing.TB, db *gorm.DB, name string) leaseRow {
	t.Helper()
	var l leaseRow
	err := db.Raw(`SELECT position, epoch, owner FROM cairn_processor_positions WHERE name = ?`, name).Row().Scan(&l.Position, &l.Epoch, &l.Owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("read position of %s: %v", name, err)
	}
	return l
}

// eventually polls cond every 20ms until it holds, failing t after
// timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: want %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runInBackground runs r until the test ends and returns a function that
// stops it and returns Run's result.
func runInBackground(t testing.TB, r *runner.Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// rebuild projects the store into a fresh table in this process and
// returns it.
func rebuild(t testing.TB, s *eventstore.Store, db *gorm.DB, head int64) map[string]account {
	t.Helper()
	clean := accountsProjector(t, s, "accounts-clean", "accounts_clean", accountsOptions{processing: processing.Options{Logger: testdb.Logger(t), ErrorHandler: processing.NoRetry{}}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- clean.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer wcancel()
	err := clean.WaitFor(wctx, head)
	cancel()
	if rerr := <-done; rerr != nil {
		t.Fatalf("clean rebuild: Run() = %v", rerr)
	}
	if err != nil {
		t.Fatalf("clean rebuild: WaitFor(%d) = %v", head, err)
	}
	return readAccounts(t, db, "accounts_clean")
}
