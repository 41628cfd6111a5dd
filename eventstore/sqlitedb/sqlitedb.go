// Package sqlitedb opens a SQLite database, through gorm, configured the way
// the Cairn event store needs it: write-ahead logging, a busy timeout,
// immediate write transactions and the chosen durability, set in the DSN so
// that every pooled connection gets them.
//
// It is a separate package because the SQLite driver needs cgo: a program
// that only uses PostgreSQL never imports it.
package sqlitedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Synchronous is SQLite's durability setting (PRAGMA synchronous).
type Synchronous string

const (
	// Full makes every committed transaction survive a power loss: one
	// fsync per commit. It is the default.
	Full Synchronous = "FULL"
	// Normal gives up durability of the last transactions on a power loss
	// or OS crash (never on a crash of the process alone) for far fewer
	// fsyncs. The database is never corrupted either way.
	Normal Synchronous = "NORMAL"
)

// Options configures [Open]. The zero value is the safe default.
type Options struct {
	// Synchronous is the durability setting; empty means [Full].
	Synchronous Synchronous
	// BusyTimeout is how long a connection waits for a lock held by
	// another connection or process; zero means 10 seconds.
	BusyTimeout time.Duration
	// GormConfig is passed to gorm.Open; nil means a config with gorm's
	// SQL logging silenced.
	GormConfig *gorm.Config
	// WrapConnector, when set, wraps the connector that the pool opens its
	// connections with: the place for database/sql instrumentation, such as
	// statement tracing, or counting statements in a test. It is called
	// once, by Open.
	WrapConnector func(driver.Connector) driver.Connector
}

// Open opens (creating it if needed) the SQLite database at path. The path
// ":memory:" opens a private in-memory database held by a single
// connection: fine for examples and tests, gone when closed.
func Open(path string, opts Options) (*gorm.DB, error) {
	if path == "" {
		return nil, errors.New("sqlitedb: empty path")
	}
	sync := opts.Synchronous
	if sync == "" {
		sync = Full
	}
	if sync != Full && sync != Normal {
		return nil, fmt.Errorf("sqlitedb: synchronous %q, want FULL or NORMAL", sync)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	memory := path == ":memory:"
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_synchronous", string(sync))
	q.Set("_txlock", "immediate")
	q.Set("_foreign_keys", "on")
	q.Set("_stmt_cache_size", "64")
	if !memory {
		q.Set("_journal_mode", "WAL")
	}
	var dsn string
	if memory {
		dsn = "file::memory:?" + q.Encode()
	} else {
		dsn = "file:" + escapePath(path) + "?" + q.Encode()
	}
	cfg := opts.GormConfig
	if cfg == nil {
		cfg = &gorm.Config{Logger: logger.Discard}
	}
	dialector := sqlite.Open(dsn)
	if opts.WrapConnector != nil {
		pool, err := wrappedPool(dsn, opts.WrapConnector)
		if err != nil {
			return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
		}
		dialector = &sqlite.Dialector{Conn: pool}
	}
	db, err := gorm.Open(dialector, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	if memory {
		// Every connection to ":memory:" is a database of its own: keep
		// exactly one, forever.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
	} else {
		sqlDB.SetMaxIdleConns(8)
	}
	if err := sqlDB.Ping(); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	return db, nil
}

// escapePath keeps '?' and '#' in a file name from being read as the start
// of the DSN's query or fragment.
func escapePath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return r.Replace(p)
}

// wrappedPool opens a pool of connections to dsn through the SQLite driver
// gorm registers, with its connector wrapped by wrap.
func wrappedPool(dsn string, wrap func(driver.Connector) driver.Connector) (*sql.DB, error) {
	probe, err := sql.Open(sqlite.DriverName, dsn) // opens no connection
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	c := wrap(dsnConnector{drv: drv, dsn: dsn})
	if c == nil {
		return nil, errors.New("WrapConnector returned nil")
	}
	return sql.OpenDB(c), nil
}

// dsnConnector is a driver.Connector for a driver that has no connector of
// its own: each connection is the driver's Open of the DSN.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }
