package sqlitedb_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// connectCounter counts the connections the pool opens: the simplest
// wrapper. Instrumentation (tracing each statement, say) wraps the
// connections it returns as well.
type connectCounter struct {
	driver.Connector
	opened *atomic.Int64
}

func (c connectCounter) Connect(ctx context.Context) (driver.Conn, error) {
	c.opened.Add(1)
	return c.Connector.Connect(ctx)
}

func ExampleOptions_wrapConnector() {
	dir, err := os.MkdirTemp("", "sqlitedb-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var opened atomic.Int64
	db, err := sqlitedb.Open(filepath.Join(dir, "cairn.db"), sqlitedb.Options{
		WrapConnector: func(c driver.Connector) driver.Connector { return connectCounter{Connector: c, opened: &opened} },
	})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	var mode string
	if err := sqlDB.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		log.Fatal(err)
	}
	// The wrapped pool keeps Open's settings, which are in the DSN.
	fmt.Println(mode, opened.Load() > 0)
	// Output: wal true
}
