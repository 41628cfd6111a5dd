// Package testdb gives tests their own real database: a SQLite file in a
// temporary directory, or a fresh schema in the PostgreSQL database named by
// CAIRN_POSTGRES_DSN. Each database is removed when the test ends, so tests
// can run in parallel and leave nothing behind.
//
// PostgreSQL databases are opened with [eventstore.OpenPostgres], so tests
// run on the pool the store documents. testdb therefore imports eventstore:
// tests inside package eventstore (rather than eventstore_test) cannot use
// it.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// EnvPostgres names the environment variable that holds the PostgreSQL DSN.
const EnvPostgres = "CAIRN_POSTGRES_DSN"

// Kind is a database backend.
type Kind string

// The backends tests run on.
const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// Kinds returns SQLite, and PostgreSQL when CAIRN_POSTGRES_DSN is set.
func Kinds() []Kind {
	if os.Getenv(EnvPostgres) != "" {
		return []Kind{SQLite, Postgres}
	}
	return []Kind{SQLite}
}

// Run runs fn as a subtest per backend of [Kinds], each named after its
// backend.
func Run(t *testing.T, fn func(t *testing.T, kind Kind)) {
	t.Helper()
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) { fn(t, k) })
	}
}

// DB is a test database: a gorm handle and a DSN that another process can
// open (a file path for SQLite, a postgres:// URL with the test's
// search_path for PostgreSQL).
type DB struct {
	Kind Kind
	Gorm *gorm.DB
	DSN  string
}

// New creates a database of the given kind for t. A PostgreSQL test is
// skipped when CAIRN_POSTGRES_DSN is unset and fails when it is set but the
// server cannot be reached.
func New(t testing.TB, kind Kind) DB {
	t.Helper()
	switch kind {
	case SQLite:
		return newSQLite(t, sqlitedb.Options{})
	case Postgres:
		return newPostgres(t)
	}
	t.Fatalf("testdb: unknown kind %q", kind)
	return DB{}
}

// NewSQLite creates a SQLite database with the given options.
func NewSQLite(t testing.TB, opts sqlitedb.Options) DB {
	t.Helper()
	return newSQLite(t, opts)
}

// NewDSN creates an empty database of the given kind for t, like [New],
// but does not open it: it returns the DSN that [Open] takes (a file path
// in a temporary directory for SQLite, a URL whose search_path is a new
// schema for PostgreSQL). The database is removed when t ends; close
// whatever opened it before (cleanups registered later run first).
func NewDSN(t testing.TB, kind Kind) string {
	t.Helper()
	switch kind {
	case SQLite:
		return filepath.Join(t.TempDir(), "cairn.db")
	case Postgres:
		base := os.Getenv(EnvPostgres)
		if base == "" {
			t.Skipf("testdb: %s not set", EnvPostgres)
		}
		dsn, drop := NewSchema(t, base)
		t.Cleanup(drop)
		return dsn
	}
	t.Fatalf("testdb: unknown kind %q", kind)
	return ""
}

func newSQLite(t testing.TB, opts sqlitedb.Options) DB {
	path := filepath.Join(t.TempDir(), "cairn.db")
	db, err := sqlitedb.Open(path, opts)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return DB{Kind: SQLite, Gorm: db, DSN: path}
}

func newPostgres(t testing.TB) DB {
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("testdb: %s not set", EnvPostgres)
	}
	dsn, drop := NewSchema(t, base)
	db, err := eventstore.OpenPostgres(dsn)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
		drop()
	})
	return DB{Kind: Postgres, Gorm: db, DSN: dsn}
}

// NewSchema creates a schema with a random name in the database of base and
// returns a DSN whose search_path is that schema, and a function that drops
// it. It fails t if the server cannot be reached.
func NewSchema(t testing.TB, base string) (dsn string, drop func()) {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "cairn_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", EnvPostgres, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("testdb: PostgreSQL at %s=%q: %v", EnvPostgres, base, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		t.Fatalf("testdb: %s must be a postgres:// URL: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("testdb: drop schema %s: %v", schema, err)
		}
	}
}

// Open opens a database of the kind from a DSN made by [New]: a SQLite file
// path or a PostgreSQL URL. Child processes of a test use it to open the
// test's database.
func Open(kind Kind, dsn string) (*gorm.DB, error) {
	if kind == Postgres {
		return eventstore.OpenPostgres(dsn)
	}
	return sqlitedb.Open(dsn, sqlitedb.Options{})
}

// Logger is [testkit.Logger]: a logger that writes to t's output while t
// runs.
func Logger(t testing.TB) *slog.Logger { return testkit.Logger(t) }
