package command_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
)

// conflictRepo is a fake repository whose first saves fail with a version
// conflict.
type conflictRepo struct {
	conflicts int // saves to fail
	loads     int
	saves     int
	saveErr   error
	opts      event.AppendOptions
}

func (r *conflictRepo) Load(ctx context.Context, id string) (*Counter, error) {
	r.loads++
	return aggregate.New[Counter](id)
}

func (r *conflictRepo) Save(ctx context.Context, c *Counter, opts ...event.AppendOption) ([]event.Event, error) {
	r.saves++
	for _, o := range opts {
		o(&r.opts)
	}
	if r.saves <= r.conflicts {
		return nil, &event.VersionConflictError{StreamID: "counter-" + c.ID(), Expected: event.NoStream, Actual: 1}
	}
	if r.saveErr != nil {
		return nil, r.saveErr
	}
	return []event.Event{{Version: 1}}, nil
}

var _ command.Repository[Counter] = (*conflictRepo)(nil)

func TestExecuteRetries(t *testing.T) {
	fast := command.ExecuteOptions{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	inc := func(c *Counter) error { return c.Increment(1) }

	t.Run("conflicts then success", func(t *testing.T) {
		repo := &conflictRepo{conflicts: 2}
		c, err := command.Execute(t.Context(), repo, "1", inc, fast)
		if err != nil || c.N != 1 {
			t.Fatalf("Execute = %+v, %v; want a counter at 1", c, err)
		}
		if repo.loads != 3 || repo.saves != 3 {
			t.Errorf("loads, saves = %d, %d; want 3, 3 (each attempt reloads)", repo.loads, repo.saves)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		repo := &conflictRepo{conflicts: 10}
		_, err := command.Execute(t.Context(), repo, "1", inc, fast)
		if !errors.Is(err, event.ErrVersionConflict) || !strings.Contains(err.Error(), "3 attempts") {
			t.Fatalf("Execute = %v, want a version conflict after 3 attempts", err)
		}
		if repo.saves != 3 {
			t.Errorf("saves = %d, want 3", repo.saves)
		}
	})
	t.Run("function error is not retried", func(t *testing.T) {
		repo := &conflictRepo{}
		_, err := command.Execute(t.Context(), repo, "1", func(c *Counter) error { return c.Increment(-1) }, fast)
		if !errors.Is(err, errNegative) || repo.saves != 0 || repo.loads != 1 {
			t.Fatalf("Execute = %v after %d loads, %d saves; want errNegative, 1 load, no save", err, repo.loads, repo.saves)
		}
	})
	t.Run("other save error is not retried", func(t *testing.T) {
		boom := errors.New("boom")
		repo := &conflictRepo{saveErr: boom}
		_, err := command.Execute(t.Context(), repo, "1", inc, fast)
		if !errors.Is(err, boom) || repo.saves != 1 {
			t.Fatalf("Execute = %v after %d saves; want boom after 1", err, repo.saves)
		}
	})
	t.Run("cancelled during backoff", func(t *testing.T) {
		repo := &conflictRepo{conflicts: 10}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := command.Execute(ctx, repo, "1", inc, command.ExecuteOptions{Backoff: time.Hour})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute = %v, want context.Canceled", err)
		}
	})
	t.Run("ids from ctx and options", func(t *testing.T) {
		repo := &conflictRepo{}
		ctx := command.WithCorrelationID(command.WithID(t.Context(), "cmd"), "corr")
		opts := fast
		opts.AppendOptions = []event.AppendOption{event.WithMetadata(map[string]string{"k": "v"})}
		if _, err := command.Execute(ctx, repo, "1", inc, opts); err != nil {
			t.Fatal(err)
		}
		if o := repo.opts; o.CausationID != "cmd" || o.CorrelationID != "corr" || o.Metadata["k"] != "v" {
			t.Errorf("append options %+v, want causation cmd, correlation corr, metadata k=v", o)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := command.Execute(t.Context(), &conflictRepo{}, "1", inc, command.ExecuteOptions{MaxAttempts: -1}); err == nil {
			t.Error("Execute with MaxAttempts -1 = nil error")
		}
		if _, err := command.Execute(t.Context(), &conflictRepo{}, "1", nil, command.ExecuteOptions{}); err == nil {
			t.Error("Execute with a nil function = nil error")
		}
	})
}

// TestExecuteRace makes two commands on one aggregate load it before either
// saves: one save conflicts, and Execute turns that into two successful
// commands.
func TestExecuteRace(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		for _, existing := range []bool{false, true} {
			name := "new"
			if existing {
				name = "existing"
			}
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				_, repo := newRepo(t, kind)
				base := 0
				if existing {
					if _, err := command.Execute(ctx, repo, "c", func(c *Counter) error { return c.Increment(100) }, command.ExecuteOptions{}); err != nil {
						t.Fatal(err)
					}
					base = 100
				}
				var loaded sync.WaitGroup
				loaded.Add(2)
				var mu sync.Mutex
				calls := 0
				run := func(by int) error {
					_, err := command.Execute(ctx, repo, "c", func(c *Counter) error {
						mu.Lock()
						calls++
						first := calls <= 2
						mu.Unlock()
						if first { // both first attempts load before either saves
							loaded.Done()
							loaded.Wait()
						}
						return c.Increment(by)
					}, command.ExecuteOptions{})
					return err
				}
				errs := make([]error, 2)
				var wg sync.WaitGroup
				wg.Go(func() { errs[0] = run(1) })
				wg.Go(func() { errs[1] = run(10) })
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("command %d: %v", i, err)
					}
				}
				if calls != 3 {
					t.Errorf("the command functions ran %d times, want 3 (one retry)", calls)
				}
				c, err := repo.Load(ctx, "c")
				if err != nil {
					t.Fatal(err)
				}
				wantV := int64(2)
				if existing {
					wantV = 3
				}
				if c.N != base+11 || c.Version() != wantV {
					t.Errorf("counter = %d at version %d, want %d at %d", c.N, c.Version(), base+11, wantV)
				}
			})
		}
	})
}

// TestPropagation dispatches commands through the Correlation middleware and
// checks the causation and correlation IDs of the events they stored.
func TestPropagation(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		store, repo := newRepo(t, kind)
		d := command.NewDispatcher()
		n := 0
		d.Use(command.Correlation(func() string { n++; return []string{"", "cmd-1", "cmd-2", "cmd-3"}[n] }), command.Validation())
		err := command.Handle(d, func(ctx context.Context, c Increment) error {
			_, err := command.Execute(ctx, repo, c.ID, func(agg *Counter) error { return agg.Increment(c.By) }, command.ExecuteOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Dispatch(ctx, Increment{ID: "a", By: 1}); err != nil {
			t.Fatal(err)
		}
		if err := d.Dispatch(command.WithCorrelationID(ctx, "req-7"), Increment{ID: "a", By: 2}); err != nil {
			t.Fatal(err)
		}
		// Saving directly, with the options from ctx.
		dctx := command.WithCorrelationID(command.WithID(ctx, "direct"), "req-8")
		c, err := repo.Load(dctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		c.Increment(3)
		if _, err := repo.Save(dctx, c, command.AppendOptions(dctx)...); err != nil {
			t.Fatal(err)
		}
		if err := d.Dispatch(ctx, Increment{ID: "a"}); !errors.Is(err, command.ErrInvalid) {
			t.Fatalf("Dispatch(invalid) = %v", err)
		}

		want := [][2]string{{"cmd-1", "cmd-1"}, {"cmd-2", "req-7"}, {"direct", "req-8"}}
		var got [][2]string
		for e, err := range store.ReadStream(ctx, "counter-a", 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, [2]string{e.CausationID, e.CorrelationID})
		}
		if len(got) != len(want) {
			t.Fatalf("stored (causation, correlation) %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("event %d: (causation, correlation) = %v, want %v", i+1, got[i], want[i])
			}
		}
	})
}

var _ command.Repository[Counter] = (*aggregate.Repository[Counter])(nil)
