package eventstore_test

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// BenchmarkAppendOne measures one append of one event at a time with the
// store's default options (so, with tracing, the global tracer provider:
// the no-op one unless a program sets another), on SQLite with
// synchronous=NORMAL, where an append costs least and the store's own work
// weighs most, and allocs/op shows what the store's code allocates. It
// uses only the options of the store before tracing, to compare with it.
func BenchmarkAppendOne(b *testing.B) {
	db := testdb.NewSQLite(b, sqlitedb.Options{Synchronous: sqlitedb.Normal})
	s := testkit.MigratedStore(b, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
	data := []any{testkit.Noted{Text: "hello"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(b.Context(), fmt.Sprint("bench-", i%100), event.Any, data); err != nil {
			b.Fatal(err)
		}
	}
}
