package eventstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

func TestAppendMetrics(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		m := testkit.NewMetrics(t)
		_, s := setup(t, kind, eventstore.Options{MeterProvider: m.Provider})
		ctx := t.Context()
		system := map[testdb.Kind]string{testdb.SQLite: "sqlite", testdb.Postgres: "postgresql"}[kind]

		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		data := []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}, testkit.Deposited{Amount: 7}}
		testkit.MustAppend(t, s, "acct-1", event.NoStream, data, event.WithIDs(ids...))
		// An idempotent replay stores nothing; a conflict and bad input fail.
		testkit.MustAppend(t, s, "acct-1", event.NoStream, data, event.WithIDs(ids...))
		if _, err := s.Append(ctx, "acct-1", event.NoStream, []any{testkit.Noted{}}); !errors.Is(err, event.ErrVersionConflict) {
			t.Fatalf("Append(NoStream) to an existing stream = %v, want a version conflict", err)
		}
		if _, err := s.Append(ctx, "", event.Any, []any{testkit.Noted{}}); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("Append() to an empty stream ID = %v, want ErrInvalidArgument", err)
		}
		// Concurrent single-event appends: however they group, the batches
		// hold 8 appends and 8 events in all.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if _, err := s.Append(ctx, "ticks", event.Any, []any{testkit.Tick{Writer: i}}); err != nil {
					t.Errorf("Append(ticks) = %v", err)
				}
			})
		}
		wg.Wait()

		got := m.Collect(t)
		checkValue := func(what string, v float64, want float64) {
			t.Helper()
			if v != want {
				t.Errorf("%s = %v, want %v", what, v, want)
			}
		}
		checkCount := func(what string, c uint64, want uint64) {
			t.Helper()
			if c != want {
				t.Errorf("%s = %d, want %d", what, c, want)
			}
		}
		_, n := got.Value("cairn.append.duration", "db.system.name", system)
		checkCount("appends measured", n, 12)
		ok := 0
		for _, p := range got["cairn.append.duration"] {
			if _, failed := p.Attrs["error.type"]; !failed {
				ok += int(p.Count)
			}
		}
		checkCount("successful appends measured", uint64(ok), 10)
		_, n = got.Value("cairn.append.duration", "error.type", "version_conflict")
		checkCount("conflicts", n, 1)
		_, n = got.Value("cairn.append.duration", "error.type", "invalid_argument")
		checkCount("invalid appends", n, 1)
		v, _ := got.Value("cairn.append.events", "db.system.name", system)
		checkValue("events appended", v, 11)
		v, batches := got.Value("cairn.append.batch.events")
		checkValue("events of the batches", v, 11)
		if batches < 2 || batches > 9 {
			t.Errorf("batches = %d, want 2 to 9", batches)
		}
		v, _ = got.Value("cairn.append.batch.appends")
		checkValue("appends of the batches", v, 9)
		if d, _ := got.Value("cairn.append.duration"); d <= 0 {
			t.Errorf("sum of append durations = %v, want > 0", d)
		}
	})
}

func TestReadMetrics(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		m := testkit.NewMetrics(t)
		_, s := setup(t, kind, eventstore.Options{MeterProvider: m.Provider, PageSize: 2})
		ctx := t.Context()
		testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}, testkit.Deposited{Amount: 7}})
		testkit.MustAppend(t, s, "acct-2", event.NoStream, []any{testkit.Opened{Owner: "bob"}})

		for _, err := range s.ReadStream(ctx, "acct-1", 0, 0) {
			if err != nil {
				t.Fatalf("ReadStream() = %v", err)
			}
		}
		if _, err := s.ReadEvent(ctx, "acct-2", 1); err != nil {
			t.Fatalf("ReadEvent() = %v", err)
		}
		for _, err := range s.ReadAll(ctx, 0, 0) {
			if err != nil {
				t.Fatalf("ReadAll() = %v", err)
			}
		}
		if _, err := s.ReadBatch(ctx, 0, 10); err != nil {
			t.Fatalf("ReadBatch() = %v", err)
		}

		got := m.Collect(t)
		for _, c := range []struct {
			kind       string
			events     float64
			minQ, maxQ uint64
		}{
			// ReadStream of 3 events in pages of 2: 2 queries that fetch
			// 3 and 1 (a page and one event more, to see whether the
			// read goes on); ReadEvent: 1.
			{"stream", 5, 3, 3},
			// ReadAll of 4 events in pages of 2: 3 and 2.
			{"all", 5, 2, 2},
			{"batch", 4, 1, 1},
		} {
			if v, _ := got.Value("cairn.read.events", "cairn.read.kind", c.kind); v != c.events {
				t.Errorf("cairn.read.events{kind=%s} = %v, want %v", c.kind, v, c.events)
			}
			if _, n := got.Value("cairn.read.duration", "cairn.read.kind", c.kind); n < c.minQ || n > c.maxQ {
				t.Errorf("cairn.read.duration{kind=%s} count = %d, want %d to %d", c.kind, n, c.minQ, c.maxQ)
			}
		}
	})
}

func TestRecordedAt(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		var mu sync.Mutex
		n := 0
		now := func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			n++
			return base.Add(time.Duration(n) * time.Minute)
		}
		_, s := setup(t, kind, eventstore.Options{Now: now})
		ctx := t.Context()
		if at, err := s.RecordedAt(ctx, 100); err != nil || !at.IsZero() {
			t.Fatalf("RecordedAt(100) on an empty store = %v, %v; want the zero time, nil", at, err)
		}
		first := testkit.MustAppend(t, s, "acct-1", event.NoStream, []any{testkit.Opened{Owner: "ann"}})
		second := testkit.MustAppend(t, s, "acct-2", event.NoStream, []any{testkit.Opened{Owner: "bob"}})
		for _, c := range []struct {
			pos  int64
			want time.Time
		}{
			{0, first[0].RecordedAt}, // none before: the oldest
			{first[0].Position, first[0].RecordedAt},
			{second[0].Position - 1, first[0].RecordedAt},
			{second[0].Position, second[0].RecordedAt},
			{second[0].Position + 1000, second[0].RecordedAt},
		} {
			at, err := s.RecordedAt(ctx, c.pos)
			if err != nil || !at.Equal(c.want) {
				t.Errorf("RecordedAt(%d) = %v, %v; want %v, nil", c.pos, at, err, c.want)
			}
		}
		if first[0].RecordedAt.Equal(second[0].RecordedAt) {
			t.Fatalf("both events recorded at %v: the clock did not move", first[0].RecordedAt)
		}
	})
}

// TestAppendTxMetrics: appends in the caller's transaction are measured
// with the attribute cairn.append.transaction=caller, replays and failures
// as with Append.
func TestAppendTxMetrics(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		m := testkit.NewMetrics(t)
		_, s := setup(t, kind, eventstore.Options{MeterProvider: m.Provider})
		ctx := t.Context()
		ids := []uuid.UUID{uuid.New(), uuid.New()}
		data := []any{testkit.Opened{Owner: "ann"}, testkit.Deposited{Amount: 5}}
		for range 2 { // the second time, a replay of stored events
			err := s.Transaction(ctx, func(tx *gorm.DB) error {
				_, err := s.AppendTx(ctx, tx, "acct-1", event.NoStream, data, event.WithIDs(ids...))
				return err
			})
			if err != nil {
				t.Fatalf("AppendTx() = %v", err)
			}
		}
		err := s.Transaction(ctx, func(tx *gorm.DB) error {
			_, err := s.AppendTx(ctx, tx, "acct-1", event.NoStream, []any{testkit.Noted{}})
			return err
		})
		if !errors.Is(err, event.ErrVersionConflict) {
			t.Fatalf("AppendTx(NoStream) to an existing stream = %v, want a version conflict", err)
		}

		got := m.Collect(t)
		caller := []string{"cairn.append.transaction", "caller"}
		if v, _ := got.Value("cairn.append.events", caller...); v != 2 {
			t.Errorf("cairn.append.events{transaction=caller} = %v, want 2", v)
		}
		if _, n := got.Value("cairn.append.duration", caller...); n != 3 {
			t.Errorf("cairn.append.duration{transaction=caller} count = %d, want 3", n)
		}
		if _, n := got.Value("cairn.append.duration", append(caller, "error.type", "version_conflict")...); n != 1 {
			t.Errorf("conflicts in the caller's transaction = %d, want 1", n)
		}
		if _, n := got.Value("cairn.append.batch.events"); n != 0 {
			t.Errorf("group commits = %d, want none", n)
		}
	})
}
