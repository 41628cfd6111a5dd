package testdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// Statements counts what a pool opened by [NewCounting] sends through
// database/sql: queries and execs (each a round trip to PostgreSQL) and
// transactions begun. Statements a store runs on the raw pgx connection
// under a pooled one (PostgreSQL appends) are not counted.
type Statements struct {
	queries atomic.Int64
	execs   atomic.Int64
	begins  atomic.Int64

	mu    sync.Mutex
	brk   string // BreakRows's match; "" when not armed
	brkAt int
}

// BreakRows makes the next query whose text contains match fail while its
// rows are read: after its first n rows, the next one is an error,
// io.ErrUnexpectedEOF, as a connection lost in the middle of a result
// gives.
func (s *Statements) BreakRows(match string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.brk, s.brkAt = match, n
}

// broken returns rows, made to break if the query is the one BreakRows
// armed for.
func (s *Statements) broken(query string, rows driver.Rows) driver.Rows {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.brk == "" || !strings.Contains(query, s.brk) {
		return rows
	}
	s.brk = ""
	return &breakingRows{Rows: rows, left: s.brkAt}
}

// breakingRows yields left rows, then io.ErrUnexpectedEOF.
type breakingRows struct {
	driver.Rows
	left int
}

func (r *breakingRows) Next(dest []driver.Value) error {
	if r.left == 0 {
		return io.ErrUnexpectedEOF
	}
	r.left--
	return r.Rows.Next(dest)
}

// Count returns the queries, execs and transactions begun so far.
func (s *Statements) Count() (queries, execs, begins int64) {
	return s.queries.Load(), s.execs.Load(), s.begins.Load()
}

// NewCounting is [New] with every connection of the pool counted by the
// returned Statements.
func NewCounting(t testing.TB, kind Kind) (DB, *Statements) {
	t.Helper()
	st := &Statements{}
	wrap := func(c driver.Connector) driver.Connector { return &countingConnector{Connector: c, st: st} }
	switch kind {
	case SQLite:
		return newSQLite(t, sqlitedb.Options{WrapConnector: wrap}), st
	case Postgres:
		dsn := NewDSN(t, Postgres)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		pool := sql.OpenDB(wrap(stdlib.GetConnector(*cfg)))
		pool.SetMaxIdleConns(eventstore.PostgresMaxIdleConns)
		t.Cleanup(func() { pool.Close() }) // before NewDSN's drop
		db, err := gorm.Open(postgres.New(postgres.Config{Conn: pool}), &gorm.Config{Logger: logger.Discard})
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		return DB{Kind: Postgres, Gorm: db, DSN: dsn}, st
	}
	t.Fatalf("testdb: unknown kind %q", kind)
	return DB{}, nil
}

// errNotCounted is the answer to a call that a driver without the
// context-taking interfaces would need (both drivers the store uses have
// them).
var errNotCounted = errors.New("testdb: the driver lacks the context-taking interface this call needs")

type countingConnector struct {
	driver.Connector
	st *Statements
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{dc: conn, st: c.st}, nil
}

// countingConn forwards to the driver's connection every optional
// interface database/sql and the store use, counting statements on the
// way.
type countingConn struct {
	dc driver.Conn
	st *Statements
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) Close() error { return c.dc.Close() }

func (c *countingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.dc.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip // database/sql prepares instead
	}
	c.st.queries.Add(1)
	rows, err := q.QueryContext(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return c.st.broken(query, rows), nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.dc.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.st.execs.Add(1)
	return e.ExecContext(ctx, query, args)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		s   driver.Stmt
		err error
	)
	if p, ok := c.dc.(driver.ConnPrepareContext); ok {
		s, err = p.PrepareContext(ctx, query)
	} else {
		s, err = c.dc.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: s, st: c.st, query: query}, nil
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.st.begins.Add(1)
	if b, ok := c.dc.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, errNotCounted
}

func (c *countingConn) CheckNamedValue(v *driver.NamedValue) error {
	if n, ok := c.dc.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.dc.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.dc.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.dc.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// Conn hands the store the pgx connection under a PostgreSQL one, as the
// pgx driver's own connection does.
func (c *countingConn) Conn() *pgx.Conn {
	if p, ok := c.dc.(interface{ Conn() *pgx.Conn }); ok {
		return p.Conn()
	}
	return nil
}

type countingStmt struct {
	driver.Stmt
	st    *Statements
	query string
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.st.queries.Add(1)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		rows, err := q.QueryContext(ctx, args)
		if err != nil {
			return nil, err
		}
		return s.st.broken(s.query, rows), nil
	}
	return nil, errNotCounted
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.st.execs.Add(1)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errNotCounted
}
