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
	if len(c.Changes()) == 0 {
		return nil, nil
	}
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
	return []event.Event{{Version: 1, Position: int64(10 * r.saves)}}, nil
}

var _ command.Repository[Counter] = (*conflictRepo)(nil)

func TestExecuteRetries(t *testing.T) {
	fast := command.ExecuteOptions{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	inc := func(c *Counter) error { return c.Increment(1) }

	t.Run("conflicts then success", func(t *testing.T) {
		repo := &conflictRepo{conflicts: 2}
		res, err := command.Execute(t.Context(), repo, "1", inc, fast)
		if err != nil || res.Position != 30 || len(res.Events) != 1 {
			t.Fatalf("Execute = %+v, %v; want the third save's event at position 30", res, err)
		}
		if repo.loads != 3 || repo.saves != 3 {
			t.Errorf("loads, saves = %d, %d; want 3, 3 (each attempt reloads)", repo.loads, repo.saves)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		repo := &conflictRepo{conflicts: 10}
		_, err := command.Execute(t.Context(), repo, "1", inc, fast)
		want := `command: gave up after 3 attempts: event: version conflict on stream "counter-1": expected no stream, stream is at 1`
		if !errors.Is(err, event.ErrVersionConflict) || err.Error() != want {
			t.Fatalf("Execute = %v, want %q", err, want)
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
		if err != boom || repo.saves != 1 {
			t.Fatalf("Execute = %v after %d saves; want boom as it is, after 1", err, repo.saves)
		}
	})
	t.Run("nothing applied", func(t *testing.T) {
		repo := &conflictRepo{}
		res, err := command.Execute(t.Context(), repo, "1", func(*Counter) error { return nil }, fast)
		if err != nil || res.Position != 0 || res.Events != nil {
			t.Fatalf("Execute = %+v, %v; want a zero Result", res, err)
		}
	})
	t.Run("cancelled during backoff", func(t *testing.T) {
		repo := &conflictRepo{conflicts: 10}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := command.Execute(ctx, repo, "1", inc, command.ExecuteOptions{Backoff: time.Hour})
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "command: waiting to retry after a version conflict: ") {
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
		err := command.Handle(d, func(ctx context.Context, c Increment) (command.Result, error) {
			return command.Execute(ctx, repo, c.ID, func(agg *Counter) error { return agg.Increment(c.By) }, command.ExecuteOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
		var positions []int64
		for _, c := range []struct {
			ctx context.Context
			cmd Increment
		}{{ctx, Increment{ID: "a", By: 1}}, {command.WithCorrelationID(ctx, "req-7"), Increment{ID: "a", By: 2}}} {
			res, err := d.Dispatch(c.ctx, c.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 || res.Position != res.Events[0].Position || res.Position <= 0 {
				t.Fatalf("Dispatch = %+v, want one event and its position", res)
			}
			positions = append(positions, res.Position)
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
		if res, err := d.Dispatch(ctx, Increment{ID: "a"}); !errors.Is(err, command.ErrInvalid) || res.Position != 0 {
			t.Fatalf("Dispatch(invalid) = %+v, %v", res, err)
		}

		want := [][2]string{{"cmd-1", "cmd-1"}, {"cmd-2", "req-7"}, {"direct", "req-8"}}
		var got [][2]string
		for e, err := range store.ReadStream(ctx, "counter-a", 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, [2]string{e.CausationID, e.CorrelationID})
			if e.Version <= 2 && e.Position != positions[e.Version-1] {
				t.Errorf("event %d at position %d, Dispatch said %d", e.Version, e.Position, positions[e.Version-1])
			}
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

// TestExecuteErrorText makes every attempt of a command conflict with
// another writer, and checks that the error says each thing once.
func TestExecuteErrorText(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		ctx := t.Context()
		_, repo := newRepo(t, kind)
		_, err := command.Execute(ctx, repo, "1", func(c *Counter) error {
			other, err := repo.Load(ctx, "1")
			if err != nil {
				return err
			}
			if err := other.Increment(1); err != nil {
				return err
			}
			if _, err := repo.Save(ctx, other); err != nil {
				return err
			}
			return c.Increment(1)
		}, command.ExecuteOptions{MaxAttempts: 2, Backoff: time.Millisecond})
		if !errors.Is(err, event.ErrVersionConflict) {
			t.Fatalf("Execute = %v, want a version conflict", err)
		}
		vc, ok := errors.AsType[*event.VersionConflictError](err)
		if !ok || vc.StreamID != "counter-1" || vc.Actual != 2 || vc.Expected != event.Exact(1) {
			t.Errorf("VersionConflictError = %+v, want stream counter-1, expected 1, actual 2", vc)
		}
		msg := err.Error()
		t.Logf("Execute = %q", msg)
		if !strings.HasPrefix(msg, "command: gave up after 2 attempts: aggregate: save: ") {
			t.Errorf("Execute = %q, want it to start with the command's and the repository's words", msg)
		}
		for _, s := range []string{"command:", "aggregate:", "eventstore:", "event:", `"counter-1"`} {
			if n := strings.Count(msg, s); n != 1 {
				t.Errorf("%q says %q %d times, want once", msg, s, n)
			}
		}
	})
}

var _ command.Repository[Counter] = (*aggregate.Repository[Counter])(nil)
