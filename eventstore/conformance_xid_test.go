package eventstore_test

import (
	"os"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/storetest"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestConformanceXID runs the conformance suite on PostgreSQL under
// OrderingXID. The horizon is the whole cluster's, which other tests
// share: reads wait for it for up to half a minute, so that a busy server
// does not make reads that follow an append miss it.
func TestConformanceXID(t *testing.T) {
	t.Parallel()
	if os.Getenv(testdb.EnvPostgres) == "" {
		t.Skipf("%s not set", testdb.EnvPostgres)
	}
	events := 20000
	if testing.Short() {
		events /= 8
	}
	storetest.Run(t, storetest.Config{
		NewDatabase:    func(t testing.TB) string { return testdb.NewDSN(t, testdb.Postgres) },
		Open:           eventstore.OpenPostgres,
		Options:        eventstore.Options{Ordering: eventstore.OrderingXID, HorizonWait: 30 * time.Second},
		OrderingEvents: events,
		Parallel:       true,
	})
}
