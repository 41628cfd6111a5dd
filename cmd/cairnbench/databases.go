package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the admin connection
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// Kinds of database.
const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// database is a fresh, empty database for one side of one run.
type database struct {
	kind string
	gorm *gorm.DB
	sql  *sql.DB
	dsn  string // PostgreSQL: a DSN of the database, for other processes
	// drop closes the database and removes it.
	drop func() error
	// size returns the bytes the database takes on disk: the SQLite file
	// with its WAL, or the PostgreSQL schema's tables and indexes.
	size func(ctx context.Context) (int64, error)
}

// target is a database configuration the workloads run on; every open
// returns a new, empty database of that configuration.
type target struct {
	name string // as shown in the report: "sqlite FULL", "postgres"
	kind string
	open func(ctx context.Context) (*database, error)
}

// targets holds the configured targets and what the report says about
// them; close releases what they share.
type targets struct {
	list  []target
	about []string
	close func() error
}

func openTargets(ctx context.Context, cfg config) (*targets, error) {
	ts := &targets{close: func() error { return nil }}
	var closers []func() error
	ts.close = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	if cfg.sqlite {
		dir, cleanup, err := sqliteDir(cfg.sqliteDir)
		if err != nil {
			return nil, err
		}
		closers = append(closers, cleanup)
		for _, s := range cfg.syncs {
			ts.list = append(ts.list, sqliteTarget(dir, s))
		}
		about, err := describeSQLite(ctx, dir)
		if err != nil {
			ts.close()
			return nil, err
		}
		ts.about = append(ts.about, about)
	}
	if cfg.postgres {
		admin, err := sql.Open("pgx", cfg.postgresDSN)
		if err != nil {
			ts.close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		closers = append(closers, admin.Close)
		about, err := describePostgres(ctx, admin, cfg.postgresDSN, cfg.pgIdle)
		if err != nil {
			ts.close()
			return nil, err
		}
		ts.about = append(ts.about, about)
		ts.list = append(ts.list, postgresTarget(admin, cfg.postgresDSN, cfg.pgIdle))
	}
	return ts, nil
}

// sqliteDir returns the directory for the SQLite files: dir, or a new
// temporary directory that cleanup removes.
func sqliteDir(dir string) (string, func() error, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("sqlite: %w", err)
		}
		return dir, func() error { return nil }, nil
	}
	tmp, err := os.MkdirTemp("", "cairnbench-")
	if err != nil {
		return "", nil, fmt.Errorf("sqlite: %w", err)
	}
	return tmp, func() error { return os.RemoveAll(tmp) }, nil
}

func sqliteTarget(dir string, sync sqlitedb.Synchronous) target {
	return target{
		name: "sqlite " + string(sync),
		kind: kindSQLite,
		open: func(ctx context.Context) (*database, error) {
			path := filepath.Join(dir, "cairnbench-"+randomHex()+".db")
			g, err := sqlitedb.Open(path, sqlitedb.Options{Synchronous: sync})
			if err != nil {
				return nil, err
			}
			sqlDB, err := g.DB()
			if err != nil {
				return nil, err
			}
			drop := func() error {
				err := sqlDB.Close()
				for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
					if rerr := os.Remove(path + suffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
						err = errors.Join(err, rerr)
					}
				}
				return err
			}
			size := func(context.Context) (int64, error) {
				var total int64
				for _, suffix := range []string{"", "-wal"} {
					fi, err := os.Stat(path + suffix)
					if errors.Is(err, os.ErrNotExist) {
						continue
					}
					if err != nil {
						return 0, err
					}
					total += fi.Size()
				}
				return total, nil
			}
			return &database{kind: kindSQLite, gorm: g, sql: sqlDB, drop: drop, size: size}, nil
		},
	}
}

// postgresTarget opens databases in new schemas of base's database. idle
// sets the pools' max idle connections (0: database/sql's default).
func postgresTarget(admin *sql.DB, base string, idle int) target {
	return target{
		name: "postgres",
		kind: kindPostgres,
		open: func(ctx context.Context) (*database, error) {
			schema := "cairnbench_" + randomHex()
			if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
				return nil, fmt.Errorf("postgres: create schema: %w", err)
			}
			dropSchema := func() error {
				// The run's context may be cancelled already: drop anyway.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
				return err
			}
			dsn, err := withSearchPath(base, schema)
			if err != nil {
				return nil, errors.Join(err, dropSchema())
			}
			// Both sides get the pool eventstore.OpenPostgres sets up.
			g, err := eventstore.OpenPostgres(dsn)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("postgres: %w", err), dropSchema())
			}
			sqlDB, err := g.DB()
			if err != nil {
				return nil, errors.Join(fmt.Errorf("postgres: %w", err), dropSchema())
			}
			if idle > 0 {
				sqlDB.SetMaxIdleConns(idle)
			}
			drop := func() error { return errors.Join(sqlDB.Close(), dropSchema()) }
			size := func(ctx context.Context) (int64, error) {
				var n int64
				err := admin.QueryRowContext(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint
					FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
					WHERE ns.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&n)
				return n, err
			}
			return &database{kind: kindPostgres, gorm: g, sql: sqlDB, dsn: dsn, drop: drop, size: size}, nil
		},
	}
}

// withSearchPath returns dsn with its search_path set to schema. dsn is a
// postgres:// URL or a key=value string.
func withSearchPath(dsn, schema string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("postgres DSN: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func describeSQLite(ctx context.Context, dir string) (string, error) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return "", fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return "", fmt.Errorf("sqlite: %w", err)
	}
	return fmt.Sprintf("SQLite %s in %s (WAL)", version, dir), nil
}

func describePostgres(ctx context.Context, admin *sql.DB, dsn string, idle int) (string, error) {
	var version, fsync, syncCommit string
	err := admin.QueryRowContext(ctx,
		"SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')").
		Scan(&version, &fsync, &syncCommit)
	if err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	pool := strconv.Itoa(eventstore.PostgresMaxIdleConns)
	if idle > 0 {
		pool = strconv.Itoa(idle)
	}
	return fmt.Sprintf("PostgreSQL %s at %s (fsync=%s, synchronous_commit=%s, max idle conns %s)",
		version, redactDSN(dsn), fsync, syncCommit, pool), nil
}

// redactDSN returns the host and database of a URL DSN, without
// credentials; other DSNs are not shown.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "(DSN)"
	}
	return u.Host + u.Path
}

func randomHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
