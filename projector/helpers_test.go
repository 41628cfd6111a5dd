package projector_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
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
func newStore(t testing.TB, db *gorm.DB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.New(db, newRegistry(), eventstore.Options{Logger: testdb.Logger(t), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("eventstore.New() = %v, want nil", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v, want nil", err)
	}
	return s
}

// fill appends n events to streams acct-0 … acct-(streams-1), chunk events
// per append: deposits of 1…9, every fifth a withdrawal, every seventh
// a note. It returns the last position.
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

// accountsProjector projects balances into table, with an upsert per
// event: a lost or doubled event shows in the result.
func accountsProjector(t testing.TB, s projector.Store, name, table string, opts processing.Options) *projector.Projector {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testdb.Logger(t)
	}
	p, err := projector.New(s, name, projector.Options{
		Processing: opts,
		Tables:     []string{table},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + table + ` (id text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL)`).Error
		},
	})
	if err != nil {
		t.Fatalf("projector.New() = %v, want nil", err)
	}
	upsert := `INSERT INTO ` + table + ` (id, balance, events) VALUES (?, ?, 1)
		ON CONFLICT (id) DO UPDATE SET balance = ` + table + `.balance + excluded.balance, events = ` + table + `.events + 1`
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d Deposited) error {
		return tx.Exec(upsert, e.StreamID, d.Amount).Error
	})
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d Withdrawn) error {
		return tx.Exec(upsert, e.StreamID, -d.Amount).Error
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

// foldAccounts computes the accounts projection from the store's events.
func foldAccounts(t testing.TB, s *eventstore.Store) map[string]account {
	t.Helper()
	want := make(map[string]account)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatalf("ReadAll() = %v", err)
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

// runInBackground runs p until the test ends, and checks that Run returns
// nil then.
func runInBackground(t testing.TB, p interface{ Run(context.Context) error }) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
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

func waitFor(t testing.TB, p *projector.Projector, pos int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, pos); err != nil {
		t.Fatalf("WaitFor(%d) = %v; status %+v", pos, err, p.Status())
	}
}
