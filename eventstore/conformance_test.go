package eventstore_test

import (
	"testing"

	"gorm.io/gorm"

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
