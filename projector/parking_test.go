package projector_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// poison fails the events of some streams from a version on, until the
// stream is fixed.
type poison struct {
	mu   sync.Mutex
	from map[string]int64 // stream → first failing version
}

func newPoison(from map[string]int64) *poison { return &poison{from: from} }

func (p *poison) fail(e event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.from[e.StreamID]; ok && e.Version >= v {
		return fmt.Errorf("poisoned %s version %d", e.StreamID, e.Version)
	}
	return nil
}

// fix makes the stream's events from version v on fail (0: none).
func (p *poison) set(stream string, v int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v == 0 {
		delete(p.from, stream)
	} else {
		p.from[stream] = v
	}
}

// expectParked returns the events up to through that a parking accounts
// projector with the poison from has parked: the deposits and
// withdrawals of the poisoned streams from their first failing version.
func expectParked(t testing.TB, s *eventstore.Store, through int64, from map[string]int64) map[int64]bool {
	t.Helper()
	want := make(map[int64]bool)
	for e, err := range s.ReadAll(t.Context(), 0, 0, testkit.TypeDeposited, testkit.TypeWithdrawn) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position > through {
			break
		}
		if v, ok := from[e.StreamID]; ok && e.Version >= v {
			want[e.Position] = true
		}
	}
	return want
}

// checkParkedState checks what a parking accounts projector left at
// position through: its parked events are exactly want, and its table is
// the fold of every other event up to through, but those of skipped.
func checkParkedState(t testing.TB, s *eventstore.Store, db *gorm.DB, name, table string, through int64, want, skipped map[int64]bool) {
	t.Helper()
	got := testkit.ParkedPositions(t, s, name)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Errorf("parked %d events; want %d: got %v, want %v", len(got), len(want), slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	missing := maps.Clone(skipped)
	if missing == nil {
		missing = make(map[int64]bool)
	}
	for pos := range got {
		missing[pos] = true
	}
	checkAccounts(t, db, table, testkit.FoldAccountsWithout(t, s, through, missing))
}

// TestParkPoisonStream: a projector whose handler fails for the events of
// one stream from a version on parks them and projects every other
// stream; once the handler is fixed, a retry (while it runs) makes the
// projection equal to a rebuild from scratch. A retry that fails again
// applies the events before the failing one and keeps the rest parked;
// a skipped stream's events are never applied.
func TestParkPoisonStream(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 3_000, 10, 7)
		// acct-3 fails from version 60 on, and again (after a first fix)
		// from 150 on; acct-5 fails from version 200 on and is skipped.
		bad := newPoison(map[string]int64{"acct-3": 60, "acct-5": 200})
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
			Processing: processing.Options{Park: true, ErrorHandler: processing.NoRetry{}, BatchSize: 100},
			Fail:       bad.fail,
		})
		testkit.RunInBackground(t, p)
		head := testkit.Head(t, s)
		testkit.WaitFor(t, p, head)

		want := expectParked(t, s, head, map[string]int64{"acct-3": 60, "acct-5": 200})
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", head, want, nil)
		// The other streams are complete.
		full := testkit.FoldAccounts(t, s, 0)
		got := testkit.ReadAccounts(t, db.Gorm, "accounts")
		for id, a := range full {
			if id != "acct-3" && id != "acct-5" && got[id] != a {
				t.Errorf("account %s = %+v; want %+v", id, got[id], a)
			}
		}
		if st := p.Status(); st.Parked != len(want) || st.OldestParked.IsZero() || st.State != processing.Running {
			t.Errorf("status = %+v; want running with %d parked", st, len(want))
		}
		streams, err := s.ParkedStreams(t.Context(), "accounts")
		if err != nil || len(streams) != 2 {
			t.Fatalf("ParkedStreams = %+v, %v; want acct-3 and acct-5", streams, err)
		}

		// New events: acct-3's wait behind the parked ones.
		more := testkit.MustAppend(t, s, "acct-3", event.Any, []any{testkit.Deposited{Amount: 100}})
		more = append(more, testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 100}})...)
		testkit.WaitFor(t, p, more[1].Position)
		want[more[0].Position] = true
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", more[1].Position, want, nil)

		// A partial fix: the retry applies acct-3's events up to version
		// 150 and keeps the rest, the failing one with a second attempt.
		bad.set("acct-3", 150)
		n, err := p.RetryParked(t.Context(), "acct-3")
		if err == nil {
			t.Fatalf("RetryParked(acct-3) with events still failing = %d, nil; want an error", n)
		}
		var retried int
		stillBad := expectParked(t, s, more[1].Position, map[string]int64{"acct-3": 150})
		for pos := range expectParked(t, s, more[1].Position, map[string]int64{"acct-3": 60}) {
			if !stillBad[pos] {
				delete(want, pos)
				retried++
			}
		}
		if n != retried {
			t.Errorf("RetryParked applied %d events; want %d", n, retried)
		}
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", more[1].Position, want, nil)
		rows, err := p.ListParked(t.Context(), "acct-3")
		if err != nil {
			t.Fatal(err)
		}
		if r := rows[0]; r.Attempts != 1 || r.WaitsOn != 0 || r.Error != "poisoned acct-3 version 150" || rows[1].WaitsOn != r.Position {
			t.Errorf("after a failed retry: first parked %+v, next %+v; want its first failed attempt, the next waiting on it", r, rows[1])
		}

		// Skip acct-5: its parked events are gone for good, with an audit
		// record, and its new events are projected again.
		skipped, err := p.SkipParked(t.Context(), "acct-5", "test")
		if err != nil {
			t.Fatal(err)
		}
		skippedAt := make(map[int64]bool)
		for _, r := range skipped {
			skippedAt[r.Position] = true
			delete(want, r.Position)
		}
		bad.set("acct-5", 0)
		after := testkit.MustAppend(t, s, "acct-5", event.Any, []any{testkit.Deposited{Amount: 7}})
		testkit.WaitFor(t, p, after[0].Position)
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", after[0].Position, want, skippedAt)

		// The full fix, retried while the projector runs: the projection
		// is a rebuild's (but for the skipped events), and acct-3's new
		// events are projected again.
		bad.set("acct-3", 0)
		if n, err := p.RetryParked(t.Context(), "acct-3"); err != nil || n != len(want) {
			t.Fatalf("RetryParked(acct-3) = %d, %v; want %d, nil", n, err, len(want))
		}
		if n, err := p.RetryParked(t.Context(), "acct-3"); err != nil || n != 0 {
			t.Errorf("second RetryParked(acct-3) = %d, %v; want 0, nil", n, err)
		}
		last := testkit.MustAppend(t, s, "acct-3", event.Any, []any{testkit.Withdrawn{Amount: 1}})
		testkit.WaitFor(t, p, last[0].Position)
		if got := testkit.ParkedPositions(t, s, "accounts"); len(got) != 0 {
			t.Errorf("parked after the retry: %v", got)
		}
		if st := p.Status(); st.Parked != 0 || !st.OldestParked.IsZero() {
			t.Errorf("status after the retry = %+v; want nothing parked", st)
		}
		clean := testkit.AccountsProjector(t, s, "accounts-clean", "accounts_clean", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, clean)
		testkit.WaitFor(t, clean, last[0].Position)
		rebuilt := testkit.ReadAccounts(t, db.Gorm, "accounts_clean")
		checkAccounts(t, db.Gorm, "accounts_clean", testkit.FoldAccounts(t, s, 0))
		rebuiltWithoutSkipped := testkit.FoldAccountsWithout(t, s, 0, skippedAt)
		checkAccounts(t, db.Gorm, "accounts", rebuiltWithoutSkipped)
		for id, a := range rebuilt {
			if id != "acct-5" {
				if g := testkit.ReadAccounts(t, db.Gorm, "accounts")[id]; g != a {
					t.Errorf("account %s = %+v; the rebuild has %+v", id, g, a)
				}
			}
		}
	})
}

// TestParkResetForgets: a reset forgets the parked events, in the same
// transaction as the tables: the rebuild meets them again.
func TestParkResetForgets(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 500, 5, 10)
		bad := newPoison(map[string]int64{"acct-2": 30})
		opts := testkit.AccountsOptions{Processing: processing.Options{Park: true, ErrorHandler: processing.NoRetry{}}, Fail: bad.fail}
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		stop()
		want := expectParked(t, s, head, map[string]int64{"acct-2": 30})
		checkParkedState(t, s, db.Gorm, "accounts", "accounts", head, want, nil)
		if err := p.Reset(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := testkit.ParkedPositions(t, s, "accounts"); len(got) != 0 || p.Status().Parked != 0 {
			t.Fatalf("after Reset: parked %v, status %+v", got, p.Status())
		}
		bad.set("acct-2", 0)
		p = testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
	})
}

// storeWithoutParking is a projector store that keeps no parked events.
type storeWithoutParking struct{ projector.Store }

func TestParkNeedsParkingStore(t *testing.T) {
	s := testkit.DomainStore(t, testdb.New(t, testdb.SQLite).Gorm)
	_, err := projector.New(storeWithoutParking{s}, "p", projector.Options{Processing: processing.Options{Park: true}})
	if !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("New(Park) on a store without parked events = %v; want ErrInvalid", err)
	}
}
