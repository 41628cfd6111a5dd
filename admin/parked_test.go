package admin_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/admin"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// TestParked lists, counts, retries and skips the events a parking
// projector parked, through the embedded command (retry runs the
// application's fixed handlers) and the standalone one (list and skip
// only).
func TestParked(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		dsn := testdb.NewDSN(t, kind)
		db, err := testdb.Open(kind, dsn)
		if err != nil {
			t.Fatal(err)
		}
		testkit.CloseWhenDone(t, db)
		s := testkit.DomainStore(t, db)
		head := testkit.Fill(t, s, 300, 4, 5)

		// The broken release parks acct-1 and acct-3 from version 20 on.
		broken := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{Park: true, ErrorHandler: processing.NoRetry{}},
			Fail: func(e event.Event) error {
				if (e.StreamID == "acct-1" || e.StreamID == "acct-3") && e.Version >= 20 {
					return errors.New("broken release")
				}
				return nil
			},
		})
		stop := testkit.RunInBackground(t, broken)
		testkit.WaitFor(t, broken, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		parked := testkit.ParkedPositions(t, s, "accounts")
		var of1 int
		for _, p := range parked {
			if p.StreamID == "acct-1" {
				of1++
			}
		}
		if of1 == 0 || of1 == len(parked) {
			t.Fatalf("parked %d events, %d of acct-1: want some of acct-1 and of acct-3", len(parked), of1)
		}

		// The fixed release's admin command.
		cfg := admin.Config{
			Name:   "bank admin",
			Getenv: func(string) string { return dsn },
			Open:   func(dsn string) (*gorm.DB, error) { return testdb.Open(kind, dsn) },
			Logger: testkit.Logger(t),
			App: func(db *gorm.DB, opts eventstore.Options) (admin.App, error) {
				s, err := eventstore.New(db, testkit.NewRegistry(), opts)
				if err != nil {
					return admin.App{}, err
				}
				p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Park: true}})
				return admin.App{Store: s, Processors: []admin.Processor{p}}, nil
			},
		}
		out, errOut, code := run(t, cfg, "parked", "list", "accounts", "--json")
		if code != 0 {
			t.Fatalf("parked list: exit %d: %s", code, errOut)
		}
		var lines []admin.ParkedLine
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var l admin.ParkedLine
			if err := dec.Decode(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
		if len(lines) != len(parked) || lines[0].Error != "broken release" || lines[0].Version < 20 || lines[0].ParkedAt.IsZero() {
			t.Errorf("parked list: %d lines, first %+v; want %d, the first with its error and version", len(lines), lines[0], len(parked))
		}
		out, _, code = run(t, cfg, "status", "--json")
		var st struct {
			Name   string `json:"name"`
			Parked *int64 `json:"parked"`
		}
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &st); code != 0 || err != nil || st.Parked == nil || *st.Parked != int64(len(parked)) {
			t.Errorf("status: exit %d, %+v (%v); want %d parked", code, st, err, len(parked))
		}

		out, errOut, code = run(t, cfg, "parked", "retry", "accounts", "acct-1", "--json")
		if code != 0 || !strings.Contains(out, `"events":`) {
			t.Fatalf("parked retry: exit %d: %s %s", code, out, errOut)
		}
		standalone := admin.Config{Getenv: cfg.Getenv, Open: cfg.Open, Logger: cfg.Logger}
		if _, errOut, code := run(t, standalone, "parked", "retry", "accounts"); code != 2 || !strings.Contains(errOut, admin.ErrNotEmbedded.Error()) {
			t.Errorf("standalone parked retry: exit %d: %s", code, errOut)
		}
		if _, errOut, code := run(t, standalone, "parked", "skip", "accounts", "--yes"); code != 0 {
			t.Fatalf("standalone parked skip: exit %d: %s", code, errOut)
		}
		if left := testkit.ParkedPositions(t, s, "accounts"); len(left) != 0 {
			t.Errorf("after retry and skip: %d parked", len(left))
		}
		// acct-1 retried, acct-3's parked events skipped for good.
		skipped := make(map[int64]bool)
		for pos, p := range parked {
			if p.StreamID == "acct-3" {
				skipped[pos] = true
			}
		}
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db, "accounts"), testkit.FoldAccountsWithout(t, s, 0, skipped))
	})
}
