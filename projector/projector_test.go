package projector_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

func checkAccounts(t testing.TB, db *gorm.DB, table string, want map[string]testkit.Account) {
	t.Helper()
	got := testkit.ReadAccounts(t, db, table)
	if !maps.Equal(got, want) {
		t.Errorf("table %s: %d accounts differ from the fold of the events", table, len(want))
		for id, w := range want {
			if g := got[id]; g != w {
				t.Errorf("  %s = %+v, want %+v", id, g, w)
			}
		}
		for id, g := range got {
			if _, ok := want[id]; !ok {
				t.Errorf("  %s = %+v, want no row", id, g)
			}
		}
	}
}

var _ projector.Store = (*eventstore.Store)(nil)

func TestCatchUpThenLive(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 10_000, 50, 500)
		// The last events are of a type the projector skips: its position
		// must still reach the head.
		noted, err := s.Append(t.Context(), "notes", event.Any, []any{testkit.Noted{Text: "a"}, testkit.Noted{Text: "b"}})
		if err != nil {
			t.Fatal(err)
		}
		head := noted[1].Position
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))

		// Live: several writers append while the projector follows.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 50 {
					if _, err := s.Append(t.Context(), fmt.Sprintf("acct-live-%d", w), event.Any,
						[]any{testkit.Deposited{Amount: i}, testkit.Withdrawn{Amount: 1}, testkit.Noted{}}); err != nil {
						t.Errorf("Append() = %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		head, err = s.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, p, head)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
		if st := p.Status(); st.State != processing.Running || st.Attempts != 0 || st.LastError != nil {
			t.Errorf("Status() = %+v, want running and healthy", st)
		}
	})
}

func TestResetRebuilds(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 1_500, 7, 100)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}, BatchSize: 200}})
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		if err := p.Reset(t.Context()); !errors.Is(err, processing.ErrRunning) {
			t.Errorf("Reset() while running = %v, want ErrRunning", err)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
		if err := p.Reset(t.Context()); err != nil {
			t.Fatalf("Reset() = %v, want nil", err)
		}
		if got := testkit.ReadAccounts(t, db.Gorm, "accounts"); len(got) != 0 {
			t.Fatalf("after Reset, table has %d rows, want 0", len(got))
		}
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
	})
}

// failingProjector counts deposits into a table, failing (or panicking)
// on the event at position failAt for its first failures handlings.
type failingProjector struct {
	*projector.Projector
	calls    atomic.Int64 // handlings of the event at failAt
	failures []processing.Failure
	mu       sync.Mutex
}

func newFailingProjector(t *testing.T, s *eventstore.Store, name string, failAt int64, failures int64, panics bool, eh processing.ErrorHandler) *failingProjector {
	t.Helper()
	fp := &failingProjector{}
	table := name + "_rows"
	p, err := projector.New(s, name, projector.Options{
		Processing: processing.Options{
			BatchSize:    100,
			ErrorHandler: eh,
			Logger:       testdb.Logger(t),
			OnError: func(f processing.Failure) {
				fp.mu.Lock()
				defer fp.mu.Unlock()
				fp.failures = append(fp.failures, f)
			},
		},
		Setup: func(ctx context.Context, tx *gorm.DB) error {
			return tx.Exec(`CREATE TABLE IF NOT EXISTS ` + table + ` (position bigint PRIMARY KEY)`).Error
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	projector.MustOn(p, func(ctx context.Context, tx *gorm.DB, e event.Event, d testkit.Deposited) error {
		if err := tx.Exec(`INSERT INTO `+table+` (position) VALUES (?)`, e.Position).Error; err != nil {
			return err
		}
		if e.Position == failAt && fp.calls.Add(1) <= failures {
			if panics {
				panic("boom")
			}
			return errors.New("boom")
		}
		return nil
	})
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	fp.Projector = p
	return fp
}

func (fp *failingProjector) failuresSeen() []processing.Failure {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]processing.Failure(nil), fp.failures...)
}

func countRows(t testing.TB, db *gorm.DB, table string) (n int64) {
	t.Helper()
	if err := db.Raw(`SELECT COUNT(*) FROM ` + table).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// depositsAt returns the positions of the deposits in the store.
func deposits(t testing.TB, s *eventstore.Store) []event.Event {
	t.Helper()
	var out []event.Event
	for e, err := range s.ReadAll(t.Context(), 0, 0, "deposited") {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestHandlerErrors(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		for _, tc := range []struct {
			name   string
			panics bool
			eh     processing.ErrorHandler
		}{
			{"constant retry", false, processing.ConstantRetry{Delay: time.Millisecond, MaxAttempts: 10}},
			{"exponential backoff", false, processing.ExponentialBackoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Jitter: 0.5}},
			{"panic recovered and retried", true, processing.ConstantRetry{Delay: time.Millisecond}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db := testdb.New(t, kind)
				s := testkit.DomainStore(t, db.Gorm)
				head := testkit.Fill(t, s, 1_000, 3, 100)
				deps := deposits(t, s)
				failAt := deps[len(deps)/2+3].Position // mid-batch
				const failures = 3
				fp := newFailingProjector(t, s, "failing", failAt, failures, tc.panics, tc.eh)
				testkit.RunInBackground(t, fp)
				testkit.WaitFor(t, fp.Projector, head)
				if got := countRows(t, db.Gorm, "failing_rows"); got != int64(len(deps)) {
					t.Errorf("rows = %d, want %d (one per deposit, exactly once)", got, len(deps))
				}
				if got := fp.calls.Load(); got != failures+1 {
					t.Errorf("the failing event was handled %d times, want %d", got, failures+1)
				}
				fs := fp.failuresSeen()
				if len(fs) != failures {
					t.Fatalf("OnError called %d times, want %d", len(fs), failures)
				}
				for i, f := range fs {
					if f.Attempt != i+1 || !f.Retry || f.Position != failAt || f.Type != "deposited" || f.StreamID == "" || f.Processor != "failing" {
						t.Errorf("failure %d = %+v, want attempt %d at position %d, retrying", i, f, i+1, failAt)
					}
					if _, ok := errors.AsType[*processing.PanicError](f.Err); ok != tc.panics {
						t.Errorf("failure %d: error %v is a PanicError: %v, want %v", i, f.Err, ok, tc.panics)
					}
				}
				st := fp.Status()
				if st.State != processing.Running || st.Attempts != 0 || st.LastError == nil {
					t.Errorf("Status() = %+v, want running, 0 attempts, last error kept", st)
				}
			})
		}
	})
}

func TestNoRetryStopsOnlyThatProjector(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 600, 3, 100)
		deps := deposits(t, s)
		failAt := deps[250].Position
		bad := newFailingProjector(t, s, "bad", failAt, 1_000, false, processing.NoRetry{})
		good := testkit.AccountsProjector(t, s, "good", "good_accounts", testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}}})
		testkit.RunInBackground(t, good)

		err := bad.Run(t.Context())
		if ee, ok := errors.AsType[*processing.EventError](err); !ok || ee.Position != failAt {
			t.Fatalf("Run() = %v, want an EventError at position %d", err, failAt)
		}
		st := bad.Status()
		if st.State != processing.Failed || st.Attempts != 1 || st.LastError == nil {
			t.Errorf("Status() = %+v, want failed after 1 attempt with the error", st)
		}
		// The events before the failing one are committed.
		if st.Position != deps[249].Position {
			t.Errorf("position = %d, want %d (the deposit before the failing one)", st.Position, deps[249].Position)
		}
		if got := countRows(t, db.Gorm, "bad_rows"); got != 250 {
			t.Errorf("rows = %d, want 250", got)
		}
		if err := bad.WaitFor(t.Context(), head); err == nil {
			t.Errorf("WaitFor() on a failed projector = nil, want its error")
		}
		testkit.WaitFor(t, good, head)
		checkAccounts(t, db.Gorm, "good_accounts", testkit.FoldAccounts(t, s, 0))
	})
}

// otherDeposited is stored as "deposited" by a writer whose registry has
// another shape for it, so that the readers' registry cannot decode it.
type otherDeposited struct {
	Amount string `json:"amount"`
}

func TestUndecodableEvent(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 300, 3, 100)
		reg := event.NewRegistry(event.RegistryOptions{})
		event.MustRegister[otherDeposited](reg, "deposited")
		w, err := eventstore.New(db.Gorm, reg, eventstore.Options{Logger: testdb.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		bad, err := w.Append(t.Context(), "acct-bad", event.Any, []any{otherDeposited{Amount: "lots"}})
		if err != nil {
			t.Fatal(err)
		}
		testkit.Fill(t, s, 100, 3, 100)
		var seen []processing.Failure
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{
			ErrorHandler: processing.ConstantRetry{Delay: time.Millisecond, MaxAttempts: 2},
			OnError:      func(f processing.Failure) { seen = append(seen, f) },
		}})
		err = p.Run(t.Context())
		de, ok := errors.AsType[*event.DecodeError](err)
		if !ok || de.Position != bad[0].Position {
			t.Fatalf("Run() = %v, want a DecodeError at position %d", err, bad[0].Position)
		}
		if len(seen) != 2 || seen[0].Position != bad[0].Position || seen[1].Type != "deposited" || seen[1].StreamID != "acct-bad" {
			t.Errorf("failures = %+v, want 2 at position %d", seen, bad[0].Position)
		}
		if st := p.Status(); st.State != processing.Failed || st.Position != bad[0].Position-1 {
			t.Errorf("Status() = %+v, want failed right before position %d", st, bad[0].Position)
		}
	})
}

// TestConcurrentInstances runs two instances of one projector at once (as
// two processes would without a runner to pick one): the position's
// compare-and-set fences whichever commits second, its batch rolls back,
// and the projection stays exactly-once.
func TestConcurrentInstances(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 3_000, 20, 100)
		opts := testkit.AccountsOptions{Processing: processing.Options{ErrorHandler: processing.NoRetry{}, BatchSize: 50}}
		a := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		b := testkit.AccountsProjector(t, s, "accounts", "accounts", opts)
		errs := make(chan error, 2)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		for _, p := range []*projector.Projector{a, b} {
			go func() { errs <- p.Run(ctx) }()
		}
		// Whichever is fenced stops; the other goes on to the head.
		var fenced int
		for range 2 {
			select {
			case err := <-errs:
				if !errors.Is(err, processing.ErrFenced) {
					t.Fatalf("Run() = %v, want ErrFenced", err)
				}
				fenced++
				continue
			case <-waitEither(ctx, head, a, b):
			}
			break
		}
		cancel()
		for range 2 - fenced {
			if err := <-errs; err != nil && !errors.Is(err, processing.ErrFenced) {
				t.Errorf("Run() = %v, want nil or ErrFenced", err)
			}
		}
		t.Logf("%d of 2 instances fenced", fenced)
		checkAccounts(t, db.Gorm, "accounts", testkit.FoldAccounts(t, s, 0))
	})
}

// waitEither returns a channel closed once one of the projectors reaches
// pos.
func waitEither(ctx context.Context, pos int64, ps ...*projector.Projector) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	for _, p := range ps {
		go func() {
			if p.WaitFor(ctx, pos) == nil {
				once.Do(func() { close(done) })
			}
		}()
	}
	return done
}

// TestRegistration: On returns an error for a type the registry does not
// know and for a second handler of a type; MustOn panics with that error.
func TestRegistration(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	p, err := projector.New(s, "registration", projector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Kind(); got != "projector" {
		t.Errorf("Kind() = %q, want projector", got)
	}
	type unknown struct{}
	err = projector.On(p, func(context.Context, *gorm.DB, event.Event, unknown) error { return nil })
	if !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("On(unregistered type) = %v, want ErrInvalid", err)
	}
	h := func(context.Context, *gorm.DB, event.Event, testkit.Deposited) error { return nil }
	projector.MustOn(p, h)
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("MustOn() twice for one type panicked with %v, want ErrInvalid", err)
		}
	}()
	projector.MustOn(p, h)
}
