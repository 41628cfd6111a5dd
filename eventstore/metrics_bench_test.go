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

// BenchmarkStoreHotPath measures what the store's metrics add to appends
// and reads when no meter provider is set (the default, a no-op): one
// event per append, and reads of a 100-event stream, on SQLite with
// synchronous=NORMAL (where the store's own work weighs most), through
// the public API only so that the same file runs on a build without
// metrics. Compare allocs/op and ns/op side by side.
func BenchmarkStoreHotPath(b *testing.B) {
	db := testdb.NewSQLite(b, sqlitedb.Options{Synchronous: sqlitedb.Normal})
	s := testkit.MigratedStore(b, db.Gorm, testkit.NewRegistry(), eventstore.Options{})
	ctx := b.Context()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Append(ctx, fmt.Sprintf("a-%d", i%100), event.Any, []any{testkit.Deposited{Amount: i}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for i := range 100 {
		testkit.MustAppend(b, s, "read", event.Any, []any{testkit.Deposited{Amount: i}})
	}
	b.Run("read100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, err := range s.ReadStream(ctx, "read", 0, 0) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 100 {
				b.Fatalf("read %d events, want 100", n)
			}
		}
	})
}
