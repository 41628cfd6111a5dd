package eventstore_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

type (
	quoted    struct{ N int }
	backslash struct{ N int }
	accented  struct{ N int }
)

// Type names go into the statements of type-filtered reads as SQL
// literals when they can: names with quotes, backslashes or any other
// character must select exactly their events through every such read.
func TestTypeNamesOfEveryShape(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := t.Context()
		db := testdb.New(t, kind)
		reg := testkit.NewRegistry()
		// The last is longer than a literal may be: it is bound.
		names := []string{"it's 'quoted'", `back\slash' OR '1'='1`, "ünïcödé – ok; --", strings.Repeat("x", 250)}
		event.MustRegister[quoted](reg, "it's 'quoted'")
		event.MustRegister[backslash](reg, `back\slash' OR '1'='1`)
		event.MustRegister[accented](reg, "ünïcödé – ok; --")
		type long struct{ N int }
		event.MustRegister[long](reg, strings.Repeat("x", 250))
		s := testkit.MigratedStore(t, db.Gorm, reg, eventstore.Options{})
		testkit.MustAppend(t, s, "s-1", event.NoStream, []any{quoted{1}, backslash{2}, accented{3}, long{4}, testkit.Noted{Text: "n"}})
		testkit.MustAppend(t, s, "t-1", event.NoStream, []any{quoted{5}, accented{6}})

		for _, name := range names {
			want := 1
			if name == "it's 'quoted'" || name == "ünïcödé – ok; --" {
				want = 2
			}
			check := func(what string, evs []event.Event, err error, want int) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s of %q: %v", what, name, err)
				}
				if len(evs) != want {
					t.Errorf("%s of %q: %d events, want %d", what, name, len(evs), want)
				}
				for _, e := range evs {
					if e.Type != name {
						t.Errorf("%s of %q: an event of type %q", what, name, e.Type)
					}
				}
			}
			evs, err := testkit.Collect(s.ReadAll(ctx, 0, 100, name))
			check("ReadAll", evs, err, want)
			b, err := s.ReadBatch(ctx, 0, 100, name)
			check("ReadBatch", b.Events, err, want)
			b, err = s.ReadBatchOf(ctx, event.StreamFilter{Prefix: "s-"}, 0, 100, name)
			check("ReadBatchOf(s-)", b.Events, err, 1)
			// Two names in one read, one of them plain.
			b, err = s.ReadBatch(ctx, 0, 100, name, testkit.TypeNoted)
			if err != nil || len(b.Events) != want+1 {
				t.Errorf("ReadBatch(%q, noted) = %d events, %v; want %d", name, len(b.Events), err, want+1)
			}
		}
	})
}

// A processor's batch names its types as literals, so that PostgreSQL
// plans it for them: with the (type, position) index, a rare type's batch
// is read from that index even by a generic plan (one that a prepared
// statement gets after a few executions), not by scanning the global
// order with a filter.
func TestTypedBatchUsesTheTypeIndexInAGenericPlan(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Postgres)
	ctx := t.Context()
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TypeIndex: true})
	// 60,000 events, one in a thousand of them a tick.
	const n, batch = 60_000, 1000
	for k := 0; k < n; k += batch {
		evs := make([]any, batch)
		for i := range evs {
			switch {
			case (k+i)%1000 == 999:
				evs[i] = testkit.Tick{Seq: k + i}
			case (k+i)%2 == 0:
				evs[i] = testkit.Deposited{Amount: k + i}
			default:
				evs[i] = testkit.Noted{Text: "n"}
			}
		}
		testkit.MustAppend(t, s, fmt.Sprintf("fill-%d", k/batch), event.NoStream, evs)
	}
	if err := db.Gorm.Exec("ANALYZE cairn_events").Error; err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.Gorm.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	q, args := s.TypedBatchSQL(0, 1000, testkit.TypeTick)
	if _, err := conn.ExecContext(ctx, "PREPARE typed_batch AS "+q); err != nil {
		t.Fatalf("PREPARE %s: %v", q, err)
	}
	lits := make([]string, len(args))
	for i, a := range args {
		if s, ok := a.(string); ok {
			lits[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		} else {
			lits[i] = fmt.Sprint(a)
		}
	}
	rows, err := conn.QueryContext(ctx, "EXPLAIN EXECUTE typed_batch("+strings.Join(lits, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`_type_position_idx`).MatchString(plan.String()) {
		t.Errorf("the generic plan of a tick batch does not use the type index:\n%s\nstatement: %s", plan.String(), q)
	}
}
