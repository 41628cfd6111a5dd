package processing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

var _ processing.Parking = (*eventstore.Store)(nil)

// prefixRecorder is a processing.Handler that records the events it
// handles and fails as fail says; before a failing event it saves the
// position of the event before it, as projectors and reactors do, so that
// the failing event can be parked.
type prefixRecorder struct {
	types []string
	fail  func(e event.Event) error

	mu      sync.Mutex
	handled []event.Event
}

func (r *prefixRecorder) Types() []string { return r.types }

func (r *prefixRecorder) HandleBatch(ctx context.Context, b event.Batch, cp processing.Checkpoint) (int64, error) {
	for i, e := range b.Events {
		if r.fail != nil {
			if err := r.fail(e); err != nil {
				if i == 0 {
					return 0, processing.NewEventError(e, err)
				}
				if serr := cp.Save(ctx, b.Events[i-1].Position); serr != nil {
					return 0, serr
				}
				return b.Events[i-1].Position, processing.NewEventError(e, err)
			}
		}
		r.mu.Lock()
		r.handled = append(r.handled, e)
		r.mu.Unlock()
	}
	if err := cp.Save(ctx, b.Through); err != nil {
		return 0, err
	}
	return b.Through, nil
}

func (r *prefixRecorder) positions() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, e := range r.handled {
		out = append(out, e.Position)
	}
	return out
}

// logBuffer is a slog handler's output, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestParkHandlerFailure: a handler that keeps failing on one event of
// stream "bad": after its error handler gives up, the event is parked
// and the processor goes on; the later events of "bad" are parked behind
// it, those of the other streams handled, in order.
func TestParkHandlerFailure(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		var all []event.Event
		for i := range 4 {
			all = append(all, testkit.MustAppend(t, s, "good", event.Any, []any{testkit.Deposited{Amount: i}})...)
			all = append(all, testkit.MustAppend(t, s, "bad", event.Any, []any{testkit.Deposited{Amount: 10 + i}})...)
		}
		poison := all[3] // the second event of "bad"
		var attempts int
		rec := &prefixRecorder{fail: func(e event.Event) error {
			if e.Position == poison.Position {
				attempts++
				return errors.New("boom")
			}
			return nil
		}}
		var logs logBuffer
		var failures []processing.Failure
		p := newProcessor(t, s, "parker", rec, processing.Options{
			Park:         true,
			ErrorHandler: processing.ConstantRetry{MaxAttempts: 3},
			Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
			OnError:      func(f processing.Failure) { failures = append(failures, f) },
		})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, all[len(all)-1].Position)

		var want []int64
		for _, e := range all {
			if e.StreamID == "good" || e.Position < poison.Position {
				want = append(want, e.Position)
			}
		}
		if got := rec.positions(); !slices.Equal(got, want) {
			t.Errorf("handled %v; want %v", got, want)
		}
		if attempts != 3 {
			t.Errorf("%d attempts at the poison event; want 3", attempts)
		}
		if n := len(failures); n != 3 || !failures[2].Parked || failures[2].Retry || failures[1].Parked {
			t.Errorf("failures = %+v; want 3, the last one parked", failures)
		}

		rows, err := p.ListParked(t.Context(), "bad")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 {
			t.Fatalf("parked %+v; want the last 3 events of bad", rows)
		}
		if r := rows[0]; r.Position != poison.Position || r.Version != poison.Version || r.Type != testkit.TypeDeposited || r.Error != "boom" || r.Attempts != 3 || r.WaitsOn != 0 {
			t.Errorf("poison event parked as %+v", r)
		}
		for _, r := range rows[1:] {
			if r.WaitsOn != poison.Position || r.Attempts != 0 || r.StreamID != "bad" || r.Version <= poison.Version {
				t.Errorf("event parked behind as %+v; want waiting on %d", r, poison.Position)
			}
		}
		if others, err := p.ListParked(t.Context(), "good"); err != nil || len(others) != 0 {
			t.Errorf("ListParked(good) = %v, %v; want none", others, err)
		}
		st := p.Status()
		if st.Parked != 3 || st.OldestParked.IsZero() || time.Since(st.OldestParked) > time.Minute || st.State != processing.Running || st.Attempts != 0 {
			t.Errorf("status = %+v; want running, 3 parked", st)
		}
		out := logs.String()
		for _, want := range []string{
			`level=WARN msg="event processor parked an event; going on" processor=parker position=` + itoa(poison.Position) + ` stream=bad type=deposited attempt=3`,
			`level=WARN msg="event processor parked an event behind its stream's parked events" processor=parker position=` + itoa(rows[1].Position) + ` stream=bad type=deposited waits_on=` + itoa(poison.Position),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}

		// New events: those of "bad" wait, the others are handled.
		more := testkit.MustAppend(t, s, "bad", event.Any, []any{testkit.Withdrawn{Amount: 1}})
		more = append(more, testkit.MustAppend(t, s, "good", event.Any, []any{testkit.Withdrawn{Amount: 1}})...)
		testkit.WaitFor(t, p, more[1].Position)
		if got := rec.positions(); got[len(got)-1] != more[1].Position || slices.Contains(got, more[0].Position) {
			t.Errorf("handled %v; want %d and not %d", got, more[1].Position, more[0].Position)
		}
		if st := p.Status(); st.Parked != 4 {
			t.Errorf("status counts %d parked; want 4", st.Parked)
		}
	})
}

func itoa(n int64) string { return strings.TrimSpace(slog.Int64Value(n).String()) }

// TestParkUndecodable: an event whose type the registry does not know (or
// whose data does not decode) fails where it is read; a parking processor
// parks it, and the events of its stream after it, and goes on. Once the
// type is known again (a fixed deploy), a retry hands them to the handler
// in order.
func TestParkUndecodable(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		type Renamed struct {
			Name string `json:"name"`
		}
		newer := testkit.NewRegistry()
		event.MustRegister[Renamed](newer, "renamed")
		writer := testkit.MigratedStore(t, db.Gorm, newer, eventstore.Options{})
		s := testkit.DomainStore(t, db.Gorm) // does not know "renamed"

		var all []event.Event
		all = append(all, testkit.MustAppend(t, writer, "a", event.Any, []any{testkit.Deposited{Amount: 1}})...)
		all = append(all, testkit.MustAppend(t, writer, "b", event.Any, []any{testkit.Deposited{Amount: 2}})...)
		all = append(all, testkit.MustAppend(t, writer, "a", event.Any, []any{Renamed{Name: "x"}, testkit.Deposited{Amount: 3}})...)
		all = append(all, testkit.MustAppend(t, writer, "b", event.Any, []any{testkit.Deposited{Amount: 4}})...)
		all = append(all, testkit.MustAppend(t, writer, "a", event.Any, []any{Renamed{Name: "y"}})...) // undecodable, parked behind
		all = append(all, testkit.MustAppend(t, writer, "b", event.Any, []any{testkit.Deposited{Amount: 5}})...)
		head := all[len(all)-1].Position

		rec := &prefixRecorder{}
		p := newProcessor(t, s, "reader", rec, processing.Options{Park: true, ErrorHandler: processing.NoRetry{}, BatchSize: 2})
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := []int64{all[0].Position, all[1].Position, all[4].Position, all[6].Position}
		if got := rec.positions(); !slices.Equal(got, want) {
			t.Errorf("handled %v; want %v", got, want)
		}
		rows, err := p.ListParked(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 || rows[0].Position != all[2].Position || rows[0].Version != 2 || rows[0].Type != "renamed" || rows[0].Attempts != 1 ||
			!strings.Contains(rows[0].Error, "unknown type") || rows[1].WaitsOn != all[2].Position || rows[2].WaitsOn != all[2].Position ||
			!strings.Contains(rows[2].Error, "unknown type") {
			t.Fatalf("parked %+v; want the first undecodable event of a, and the two after it waiting on it", rows)
		}

		// The fix: a registry that knows the type. The retry reads the
		// events again and hands them over in order.
		fixed := testkit.MigratedStore(t, db.Gorm, newer, eventstore.Options{})
		p2 := newProcessor(t, fixed, "reader", &prefixRecorder{}, processing.Options{Park: true})
		var replayed []event.Event
		n, err := p2.RetryParkedWith(t.Context(), "a", func(ctx context.Context, parked []event.Parked, events []event.Event) (int, error) {
			for i, e := range events {
				replayed = append(replayed, e)
				if removed, err := fixed.Unpark(ctx, "reader", parked[i].Position); err != nil || !removed {
					return i, errors.Join(err, processing.ErrNotParked)
				}
			}
			return len(events), nil
		})
		if err != nil || n != 3 {
			t.Fatalf("RetryParkedWith = %d, %v; want 3, nil", n, err)
		}
		if len(replayed) != 3 || replayed[0].Data != (Renamed{Name: "x"}) || replayed[1].Data != (testkit.Deposited{Amount: 3}) || replayed[2].Data != (Renamed{Name: "y"}) {
			t.Errorf("replayed %+v; want the three events of a in order", replayed)
		}
		if st := p2.Status(); st.Parked != 0 {
			t.Errorf("status after the retry counts %d parked; want 0", st.Parked)
		}
	})
}

// TestParkRetryFailsAgain: a retry whose handler fails again keeps the
// events parked and counts the attempt; skipping removes them with an
// audit record.
func TestParkRetryFailsAgain(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		evs := testkit.MustAppend(t, s, "bad", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}, testkit.Deposited{Amount: 3}})
		var logs logBuffer
		rec := &prefixRecorder{fail: func(e event.Event) error {
			if e.Position == evs[0].Position {
				return errors.New("boom")
			}
			return nil
		}}
		p := newProcessor(t, s, "p", rec, processing.Options{Park: true, ErrorHandler: processing.NoRetry{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, evs[2].Position)
		stop()

		failing := func(ctx context.Context, parked []event.Parked, events []event.Event) (int, error) {
			return 0, processing.NewEventError(events[0], errors.New("still broken"))
		}
		for range 2 {
			if n, err := p.RetryParkedWith(t.Context(), "bad", failing); n != 0 || err == nil || !strings.Contains(err.Error(), "still broken") {
				t.Fatalf("RetryParkedWith(failing) = %d, %v; want 0 and the error", n, err)
			}
		}
		rows, err := p.ListParked(t.Context(), "bad")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 || rows[0].Attempts != 3 || rows[0].Error != "still broken" || !rows[0].LastFailedAt.After(rows[0].FirstFailedAt.Add(-time.Millisecond)) {
			t.Fatalf("after two failed retries: %+v; want 3 attempts and the new error", rows)
		}
		if st := p.Status(); st.Parked != 3 {
			t.Errorf("status counts %d parked; want 3", st.Parked)
		}

		// Skip the poison event alone, then the others by their stream.
		if _, err := p.SkipParked(t.Context(), "bad", ""); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("SkipParked without who = %v; want ErrInvalid", err)
		}
		if _, err := p.SkipParked(t.Context(), "bad", "ops@example.com", evs[0].Position, 999); !errors.Is(err, processing.ErrNotParked) {
			t.Errorf("SkipParked of an event not parked = %v; want ErrNotParked", err)
		}
		skipped, err := p.SkipParked(t.Context(), "bad", "ops@example.com", evs[0].Position)
		if err != nil || len(skipped) != 1 || skipped[0].Position != evs[0].Position {
			t.Fatalf("SkipParked(first) = %+v, %v", skipped, err)
		}
		if st := p.Status(); st.Parked != 2 {
			t.Errorf("status after a skip counts %d parked; want 2", st.Parked)
		}
		skipped, err = p.SkipParked(t.Context(), "bad", "ops@example.com")
		if err != nil || len(skipped) != 2 {
			t.Fatalf("SkipParked(stream) = %+v, %v", skipped, err)
		}
		if rows, _ := p.ListParked(t.Context(), ""); len(rows) != 0 {
			t.Errorf("after skipping: parked %+v", rows)
		}
		out := logs.String()
		for _, e := range evs {
			want := `level=WARN msg="parked event skipped" processor=p who=ops@example.com position=` + itoa(e.Position) + ` stream=bad type=deposited`
			if !strings.Contains(out, want) {
				t.Errorf("log lacks the audit record %q:\n%s", want, out)
			}
		}
		if _, err := p.SkipParked(t.Context(), "bad", "ops@example.com", evs[1].Position); !errors.Is(err, processing.ErrNotParked) {
			t.Errorf("second skip = %v; want ErrNotParked", err)
		}
	})
}

// TestParkDefaultAttempts: a parking processor with no error handler
// parks an event after DefaultParkAttempts attempts.
func TestParkDefaultAttempts(t *testing.T) {
	if testing.Short() {
		t.Skip("waits through the default backoff")
	}
	s := testkit.DomainStore(t, testdb.New(t, testdb.SQLite).Gorm)
	evs := testkit.MustAppend(t, s, "bad", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
	var mu sync.Mutex
	attempts := 0
	rec := &prefixRecorder{fail: func(e event.Event) error {
		if e.Position == evs[0].Position {
			mu.Lock()
			attempts++
			mu.Unlock()
			return errors.New("boom")
		}
		return nil
	}}
	p := newProcessor(t, s, "p", rec, processing.Options{Park: true})
	testkit.RunInBackground(t, p)
	testkit.WaitFor(t, p, evs[1].Position)
	mu.Lock()
	defer mu.Unlock()
	if attempts != processing.DefaultParkAttempts {
		t.Errorf("%d attempts before parking; want %d", attempts, processing.DefaultParkAttempts)
	}
}

// TestNoParkWithoutOptIn: without Park, nothing changes: the error
// handler's stop stops the processor, and nothing is parked.
func TestNoParkWithoutOptIn(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		evs := testkit.MustAppend(t, s, "bad", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		testkit.MustAppend(t, s, "good", event.Any, []any{testkit.Deposited{Amount: 1}})
		rec := &prefixRecorder{fail: func(e event.Event) error {
			if e.Position == evs[1].Position {
				return errors.New("boom")
			}
			return nil
		}}
		p := newProcessor(t, s, "p", rec, processing.Options{ErrorHandler: processing.ConstantRetry{MaxAttempts: 2}})
		err := p.Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("Run() = %v; want the handler's error", err)
		}
		if st := p.Status(); st.State != processing.Failed || st.Position != evs[0].Position || st.Parked != 0 {
			t.Errorf("status = %+v; want failed at %d, nothing parked", st, evs[0].Position)
		}
		if n, _, err := s.ParkedCount(t.Context(), "p"); err != nil || n != 0 {
			t.Errorf("ParkedCount = %d, %v; want 0", n, err)
		}
	})
}

// positionsOnly is a store without parked events.
type positionsOnly struct{ processing.Store }

func TestParkNeedsAStoreThatParks(t *testing.T) {
	s := testkit.DomainStore(t, testdb.New(t, testdb.SQLite).Gorm)
	if _, err := processing.New(positionsOnly{s}, "p", &prefixRecorder{}, processing.Options{Park: true}); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("New(Park, store without parked events) = %v; want ErrInvalid", err)
	}
	p, err := processing.New(positionsOnly{s}, "p", &prefixRecorder{}, processing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListParked(t.Context(), ""); !errors.Is(err, processing.ErrInvalid) {
		t.Errorf("ListParked on a store without parked events = %v; want ErrInvalid", err)
	}
}

// TestWaitForParkedEvent: a parking processor moves its position past the
// event it parks (and those parked behind it), but their effect is not
// there: a wait for one of them is blocked at once, naming the processor
// and the parked event, while a wait for another stream's later event
// succeeds.
func TestWaitForParkedEvent(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		s := testkit.DomainStore(t, testdb.New(t, kind).Gorm)
		bad := testkit.MustAppend(t, s, "bad", event.Any, []any{testkit.Deposited{Amount: 1}, testkit.Deposited{Amount: 2}})
		good := testkit.MustAppend(t, s, "good", event.Any, []any{testkit.Deposited{Amount: 3}})
		rec := &prefixRecorder{fail: func(e event.Event) error {
			if e.Position == bad[0].Position {
				return errors.New("boom")
			}
			return nil
		}}
		p := newProcessor(t, s, "parker", rec, processing.Options{Park: true, ErrorHandler: processing.NoRetry{}})
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, good[0].Position)

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := processing.WaitForPositions(ctx, s, good[0].Position, "parker"); err != nil {
			t.Errorf("WaitForPositions(%d), another stream's event = %v; want nil", good[0].Position, err)
		}
		for _, c := range []struct {
			target int64
			reason string
		}{
			{bad[0].Position, "boom"},
			{bad[1].Position, "parked behind the parked event at " + itoa(bad[0].Position)},
		} {
			err := processing.WaitForPositions(ctx, s, c.target, "parker")
			be, ok := errors.AsType[*processing.BlockedError](err)
			if !ok || ctx.Err() != nil {
				t.Fatalf("WaitForPositions(%d) = %v; want a BlockedError at once", c.target, err)
			}
			if be.Processor != "parker" || !strings.Contains(be.Reason, "parked") || !strings.Contains(be.Reason, c.reason) {
				t.Errorf("BlockedError = %+v; want parker, parked, %q", be, c.reason)
			}
		}
	})
}
