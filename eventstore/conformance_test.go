package eventstore_test

import (
	"net/url"
	"os"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/storetest"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestConformance runs the public conformance suite, which holds the
// store's behavioural tests, on each database.
func TestConformance(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		// PostgreSQL writers run truly in parallel: more events find rarer
		// ordering faults there.
		events := 4000
		if kind == testdb.Postgres {
			events = 20000
		}
		if testing.Short() {
			events /= 8
		}
		storetest.Run(t, storetest.Config{
			NewDatabase:    func(t testing.TB) string { return testdb.NewDSN(t, kind) },
			Open:           func(dsn string) (*gorm.DB, error) { return testdb.Open(kind, dsn) },
			OrderingEvents: events,
			Parallel:       true,
		})
	})
}

// TestConformanceQueryModes runs the conformance suite on PostgreSQL in
// the pgx query modes that do not ask the server for the types of a
// statement's parameters, which users set behind PgBouncer in transaction
// mode (default_query_exec_mode in the DSN): every parameter must be
// encodable from its Go type alone. TestConformance covers the mode of
// the environment's DSN (by default cache_statement); the global-order
// tests write fewer events here.
func TestConformanceQueryModes(t *testing.T) {
	t.Parallel()
	if os.Getenv(testdb.EnvPostgres) == "" {
		t.Skipf("%s not set", testdb.EnvPostgres)
	}
	for _, mode := range []string{"simple_protocol", "exec"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			events := 1000
			if testing.Short() {
				events = 200
			}
			storetest.Run(t, storetest.Config{
				NewDatabase: func(t testing.TB) string {
					u, err := url.Parse(testdb.NewDSN(t, testdb.Postgres))
					if err != nil {
						t.Fatal(err)
					}
					q := u.Query()
					q.Set("default_query_exec_mode", mode)
					u.RawQuery = q.Encode()
					return u.String()
				},
				Open:           eventstore.OpenPostgres,
				OrderingEvents: events,
				Parallel:       true,
			})
		})
	}
}
