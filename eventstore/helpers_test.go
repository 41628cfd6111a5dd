package eventstore_test

import (
	"testing"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// setup gives t a fresh database of the kind and a migrated store on it,
// with the registry of testkit's domain.
func setup(t *testing.T, kind testdb.Kind, opts eventstore.Options) (testdb.DB, *eventstore.Store) {
	t.Helper()
	db := testdb.New(t, kind)
	return db, testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), opts)
}
