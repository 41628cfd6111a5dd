package runner_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

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

// rebuild projects the store into a fresh table in this process and
// returns it.
func rebuild(t testing.TB, s *eventstore.Store, db *gorm.DB, head int64) map[string]testkit.Account {
	t.Helper()
	clean := testkit.AccountsProjector(t, s, "accounts-clean", "accounts_clean", testkit.AccountsOptions{Processing: processing.Options{Logger: testdb.Logger(t), ErrorHandler: processing.NoRetry{}}})
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
	return testkit.ReadAccounts(t, db, "accounts_clean")
}
