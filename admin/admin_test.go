package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/admin"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// run runs the admin command in this process and returns its output and
// exit status.
func run(t *testing.T, cfg admin.Config, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = admin.Main(t.Context(), args, cfg, &out, &errOut)
	return out.String(), errOut.String(), code
}

// bankConfig is the embedded configuration of testkit's bank domain on
// the database at dsn, with an accounts projector; reg may add upcasters.
func bankConfig(t *testing.T, kind testdb.Kind, dsn string, reg func() *event.Registry) admin.Config {
	return admin.Config{
		Name:   "bank admin",
		Getenv: func(string) string { return dsn },
		Open:   func(dsn string) (*gorm.DB, error) { return testdb.Open(kind, dsn) },
		Logger: testkit.Logger(t),
		Stdin:  strings.NewReader(""),
		App: func(db *gorm.DB, opts eventstore.Options) (admin.App, error) {
			s, err := eventstore.New(db, reg(), opts)
			if err != nil {
				return admin.App{}, err
			}
			p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{})
			return admin.App{Store: s, Processors: []admin.Processor{p}}, nil
		},
	}
}

func TestRun(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		dsn := testdb.NewDSN(t, kind)
		cfg := bankConfig(t, kind, dsn, testkit.NewRegistry)
		if _, errOut, code := run(t, cfg, "migrate"); code != 0 {
			t.Fatalf("migrate: exit %d: %s", code, errOut)
		}
		db, err := testdb.Open(kind, dsn)
		if err != nil {
			t.Fatal(err)
		}
		testkit.CloseWhenDone(t, db)
		s := testkit.NewStore(t, db, testkit.NewRegistry(), eventstore.Options{})
		testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}})
		testkit.MustAppend(t, s, "acct-2", event.NoStream, []any{testkit.Opened{Owner: "bob"}, testkit.Deposited{Amount: 7}})

		t.Run("usage", func(t *testing.T) {
			for _, tc := range []struct {
				args []string
				code int
			}{
				{nil, 2}, {[]string{"nope"}, 2}, {[]string{"events"}, 2}, {[]string{"events", "s", "--all"}, 2},
				{[]string{"status", "--bogus"}, 2}, {[]string{"-h"}, 0}, {[]string{"reset", "-h"}, 0},
				{[]string{"parked", "juggle", "p"}, 2}, {[]string{"verify-order", "--writers", "0"}, 2},
			} {
				if _, _, code := run(t, cfg, tc.args...); code != tc.code {
					t.Errorf("%q: exit %d, want %d", tc.args, code, tc.code)
				}
			}
			if got := admin.ExitCode(flag.ErrHelp); got != 0 {
				t.Errorf("ExitCode(ErrHelp) = %d", got)
			}
			if got := admin.ExitCode(admin.ErrCheckFailed); got != 1 {
				t.Errorf("ExitCode(ErrCheckFailed) = %d", got)
			}
		})

		t.Run("rebuild replays the projector here", func(t *testing.T) {
			if _, errOut, code := run(t, cfg, "rebuild", "accounts"); code != 2 || !strings.Contains(errOut, "--yes") {
				t.Errorf("rebuild without --yes: exit %d (%s), want 2 asking for --yes", code, errOut)
			}
			out, errOut, code := run(t, cfg, "rebuild", "accounts", "--yes", "--json")
			if code != 0 || !strings.Contains(out, `"through":4`) {
				t.Fatalf("rebuild: exit %d, %s\n%s", code, out, errOut)
			}
			var got []testkit.Account
			if err := db.Raw("SELECT balance, events FROM accounts ORDER BY id").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Balance != 5 || got[1].Balance != 7 {
				t.Errorf("accounts after rebuild = %+v, want 5 and 7", got)
			}
			// Again: a rebuild starts from nothing, so nothing doubles.
			if _, errOut, code := run(t, cfg, "rebuild", "accounts", "--yes"); code != 0 {
				t.Fatalf("rebuild again: exit %d: %s", code, errOut)
			}
			if err := db.Raw("SELECT balance, events FROM accounts ORDER BY id").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Balance != 5 || got[1].Balance != 7 {
				t.Errorf("accounts after a second rebuild = %+v, want 5 and 7", got)
			}
			if _, _, code := run(t, cfg, "rebuild", "nope", "--yes"); code != 1 {
				t.Errorf("rebuild of an unknown projector: exit %d, want 1", code)
			}
		})

		t.Run("pause and resume", func(t *testing.T) {
			paused := func() bool {
				rows, err := s.ListPositions(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					if r.Name == "accounts" {
						return r.Paused
					}
				}
				t.Fatal("no position row for accounts")
				return false
			}
			out, errOut, code := run(t, cfg, "pause", "accounts", "--json")
			if code != 0 || !strings.Contains(out, `"paused":true`) || !paused() {
				t.Fatalf("pause: exit %d, %s %s; flag %v, want set", code, out, errOut, paused())
			}
			out, errOut, code = run(t, cfg, "resume", "accounts")
			if code != 0 || !strings.Contains(out, "resumed") || paused() {
				t.Fatalf("resume: exit %d, %s %s; flag %v, want cleared", code, out, errOut, paused())
			}
			if _, _, code := run(t, cfg, "pause", "nope"); code != 1 {
				t.Errorf("pause of an unknown processor: exit %d, want 1", code)
			}
			if _, _, code := run(t, cfg, "pause"); code != 2 {
				t.Errorf("pause without a processor: exit %d, want 2", code)
			}
		})

		t.Run("check goes through the upcasters", func(t *testing.T) {
			// Deposits stored at version 1 of the type are read as version 2,
			// whose field is named differently: the upcaster renames it.
			type DepositedV2 struct {
				Cents int `json:"cents"`
			}
			withUpcaster := func() *event.Registry {
				reg := event.NewRegistry(event.RegistryOptions{})
				event.MustRegister[testkit.Opened](reg, testkit.TypeOpened)
				if err := event.RegisterVersion[DepositedV2](reg, testkit.TypeDeposited, 2); err != nil {
					t.Fatal(err)
				}
				if err := reg.AddUpcaster(testkit.TypeDeposited, 1, func(b []byte) ([]byte, error) {
					var v1 testkit.Deposited
					if err := json.Unmarshal(b, &v1); err != nil {
						return nil, err
					}
					return json.Marshal(DepositedV2{Cents: v1.Amount * 100})
				}); err != nil {
					t.Fatal(err)
				}
				return reg
			}
			noUpcaster := func() *event.Registry {
				reg := event.NewRegistry(event.RegistryOptions{})
				event.MustRegister[testkit.Opened](reg, testkit.TypeOpened)
				if err := event.RegisterVersion[DepositedV2](reg, testkit.TypeDeposited, 2); err != nil {
					t.Fatal(err)
				}
				return reg
			}
			check := func(reg func() *event.Registry) (string, int) {
				c := bankConfig(t, kind, dsn, reg)
				c.App = func(db *gorm.DB, opts eventstore.Options) (admin.App, error) {
					s, err := eventstore.New(db, reg(), opts)
					return admin.App{Store: s}, err
				}
				out, _, code := run(t, c, "check")
				return out, code
			}
			if out, code := check(withUpcaster); code != 0 || !strings.Contains(out, "checked 4 events of 2 types: 0 failed") {
				t.Errorf("check with the upcaster: exit %d\n%s", code, out)
			}
			out, code := check(noUpcaster)
			if code != 1 || strings.Count(out, "FAILED position") != 2 || !strings.Contains(out, "no upcaster from schema version 1") {
				t.Errorf("check without the upcaster: exit %d\n%s\nwant both deposits failing", code, out)
			}
		})

		t.Run("standalone", func(t *testing.T) {
			c := admin.Config{Getenv: cfg.Getenv, Open: cfg.Open, Logger: cfg.Logger}
			for _, cmd := range []string{"check", "rebuild"} {
				if _, errOut, code := run(t, c, cmd, "accounts"); code != 2 || !strings.Contains(errOut, admin.ErrNotEmbedded.Error()) {
					t.Errorf("standalone %s: exit %d: %s", cmd, code, errOut)
				}
			}
			out, _, code := run(t, c, "status")
			if code != 0 || !strings.Contains(out, "accounts") || !strings.Contains(out, "unknown") {
				t.Errorf("standalone status: exit %d\n%s", code, out)
			}
			out, _, code = run(t, c, "streams", "--prefix", "acct-", "--limit", "1")
			if code != 0 || !strings.Contains(out, "acct-1") || strings.Contains(out, "acct-2") {
				t.Errorf("standalone streams: exit %d\n%s", code, out)
			}
		})
	})
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {admin.ErrUsage, 2}, {admin.ErrNotEmbedded, 2},
		{admin.ErrCheckFailed, 1}, {errors.New("boom"), 1}, {context.Canceled, 1},
	} {
		if got := admin.ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
