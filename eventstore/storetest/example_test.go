package storetest_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"iter"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/storetest"
)

// This example is a whole test file: the suite run against a PostgreSQL
// database of your own, each part of it in a schema of its own that is
// dropped when the part ends. Your test calls
//
//	func TestEventStore(t *testing.T) {
//		storetest.Run(t, suiteConfig(os.Getenv("DATABASE_URL")))
//	}
//
// with DATABASE_URL naming a database the test user may create schemas in,
// reached the way your application reaches it (through its pooler, with
// its TLS and session settings).
func Example() {
	cfg := suiteConfig("postgres://app@db.example.com:5432/app?sslmode=verify-full")
	fmt.Println(cfg.Validate())
	// Output: <nil>
}

// suiteConfig returns the suite's configuration for the PostgreSQL
// database at base.
func suiteConfig(base string) storetest.Config {
	return storetest.Config{
		NewDatabase: func(t testing.TB) string { return newSchema(t, base) },
		Open:        eventstore.OpenPostgres,
		// The suite's own stores use these options: set what the
		// application sets.
		Options: eventstore.Options{TablePrefix: "app_"},
	}
}

// newSchema creates a schema with a random name in the database at base
// and returns a DSN whose search_path is that schema. The schema is
// dropped when t ends.
func newSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "storetest_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// CheckProcessOrder on its own: writers in four processes and subscribers in two
// more, here following the store with a reader of the application's own
// rather than Store.Subscribe. A report with faults means the reader
// skips, repeats or reorders events.
func ExampleCheckProcessOrder() {
	// In a _test.go file:
	_ = func(t *testing.T) {
		rep := storetest.CheckProcessOrder(t, suiteConfig(os.Getenv("DATABASE_URL")), storetest.ProcessOrder{
			Subscribe: func(ctx context.Context, s *eventstore.Store, after int64) iter.Seq2[event.Event, error] {
				return s.Subscribe(ctx, after) // or the application's own reader
			},
		})
		if rep.Faults() > 0 {
			t.Errorf("the reader keeps no order: %v", rep)
		}
	}
}
