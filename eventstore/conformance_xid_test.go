package eventstore_test

import (
	"net/url"
	"testing"

	"github.com/cairnhq/cairn/eventstore/storetest"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestConformanceXID runs the conformance suite on PostgreSQL under
// OrderingXID.
func TestConformanceXID(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	events := 20000
	if testing.Short() {
		events /= 8
	}
	storetest.Run(t, xidConfig(events))
}

// TestConformanceXIDSimpleProtocol runs the suite under OrderingXID in
// pgx's simple_protocol query mode, which prepares nothing on the server
// (PgBouncer in transaction mode): the statements of the ordering bind
// nothing the mode cannot encode.
func TestConformanceXIDSimpleProtocol(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	events := 1000
	if testing.Short() {
		events = 200
	}
	cfg := xidConfig(events)
	cfg.NewDatabase = func(t testing.TB) string {
		u, err := url.Parse(testdb.NewDSN(t, testdb.Postgres))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("default_query_exec_mode", "simple_protocol")
		u.RawQuery = q.Encode()
		return u.String()
	}
	storetest.Run(t, cfg)
}
