// Command cairn operates any Cairn database without the application's Go
// types: processors' status and lag, streams and events (data shown as
// stored), fenced resets of processor positions, parked events, the
// store's ordering check on the real database, and migrations. It is the
// standalone form of package admin, whose commands an application mounts
// as its own subcommand (with its types: check and rebuild, and resets
// that clear a projector's tables).
//
// Usage:
//
//	cairn [-db DSN] [-prefix P] COMMAND [flags] [arguments]
//
// The database is -db, or the environment variable CAIRN_DB: a SQLite file
// path or a postgres:// URL. Run 'cairn -h' for the commands, and
// 'cairn COMMAND -h' for a command's flags and examples. Exit status: 0 ok,
// 1 error or failed check, 2 bad usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/admin"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := admin.Main(ctx, os.Args[1:], admin.Config{Name: "cairn", DBEnv: "CAIRN_DB", Open: open}, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// open opens PostgreSQL for a postgres:// URL, else the SQLite file at
// that path (which must exist: cairn operates databases, it does not make
// them).
func open(dsn string) (*gorm.DB, error) {
	if len(dsn) > 11 && (dsn[:11] == "postgres://" || len(dsn) > 13 && dsn[:13] == "postgresql://") {
		return eventstore.OpenPostgres(dsn)
	}
	if _, err := os.Stat(dsn); err != nil {
		return nil, err
	}
	return sqlitedb.Open(dsn, sqlitedb.Options{})
}
