package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// OrderCheck configures [VerifyOrder].
type OrderCheck struct {
	// Open opens the database under test, as the application would.
	// VerifyOrder calls it twice — two stores on their own connection
	// pools stand for two processes — and closes what it gets.
	Open func() (*gorm.DB, error)
	// Options are the stores' options. Its TablePrefix must name tables
	// that nothing else uses: VerifyOrder creates them (Migrate) and
	// writes its events there. It does not drop them
	// ([eventstore.Store.DropTables] does).
	Options eventstore.Options
	// Events is how many events the writers append in all; zero means
	// 4,000. It is rounded down to a multiple of Writers.
	Events int
	// Writers is how many goroutines append at once; zero means 8.
	Writers int
	// Progress, if set, is called with the count of acknowledged events
	// as they grow, one call at a time.
	Progress func(written, total int)
}

// OrderReport is what [VerifyOrder] found.
type OrderReport struct {
	// Written counts the acknowledged events.
	Written int
	// Readers has a report per reader: a read of all events once the
	// writers are done, and live subscriptions on both stores, two
	// started before the writes and one midway.
	Readers []ReaderReport

	acked    []event.Event   // by position
	received [][]event.Event // per reader, as Readers
}

// ReaderReport is what one reader got, measured against the acknowledged
// events.
type ReaderReport struct {
	Name string
	// Received counts the events it yielded.
	Received int
	// Skipped counts acknowledged events it never yielded: the failure
	// the global order exists to prevent.
	Skipped int
	// Repeated counts events it yielded more than once.
	Repeated int
	// OutOfOrder counts events it yielded at a position not above the one
	// before.
	OutOfOrder int
	// Unexpected counts events it yielded that no writer had been
	// acknowledged for.
	Unexpected int
}

// OK reports whether the reader got every acknowledged event once, in
// order, and nothing else.
func (r ReaderReport) OK() bool {
	return r.Skipped == 0 && r.Repeated == 0 && r.OutOfOrder == 0 && r.Unexpected == 0
}

// ErrOrder reports a global-order check that found an event skipped,
// repeated, reordered or unexpected.
var ErrOrder = errors.New("storetest: global order violated")

// Err returns nil when every reader got every acknowledged event once and
// in order, and otherwise an error matching [ErrOrder] that says how each
// failing reader went wrong.
func (r OrderReport) Err() error {
	var bad []string
	for _, rr := range r.Readers {
		if !rr.OK() {
			bad = append(bad, fmt.Sprintf("%s: %d skipped, %d repeated, %d out of order, %d unexpected of %d received",
				rr.Name, rr.Skipped, rr.Repeated, rr.OutOfOrder, rr.Unexpected, rr.Received))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d events written; %s", ErrOrder, r.Written, strings.Join(bad, "; "))
}

// VerifyOrder checks the store's global order (invariant 2: a reader that
// has seen position P never later finds an event before P) on a real
// database: Writers goroutines append Events events across two stores on
// their own pools, in appends of 1 to 3 events with exact expected
// versions (with some appends that must fail, which may leave holes in the
// positions), while live subscriptions follow. Once the writers are done,
// it compares what every reader got with the acknowledged events.
//
// It is the concurrent-writer test of [Run], as a function: the admin
// command's verify-order runs it against an application's database
// under a scratch table prefix. Its error reports a failure to run the
// check (the database, a writer's unexpected error, a subscription that
// stalls for 30 seconds); what the readers got is in the report
// ([OrderReport.Err]).
func VerifyOrder(ctx context.Context, c OrderCheck) (*OrderReport, error) {
	if c.Open == nil {
		return nil, errors.New("storetest: verify order: no Open function")
	}
	writers := c.Writers
	if writers <= 0 {
		writers = 8
	}
	total := c.Events
	if total <= 0 {
		total = 4000
	}
	total = max(writers, total-total%writers)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stores []*eventstore.Store
	for range 2 {
		db, err := c.Open()
		if err != nil {
			return nil, fmt.Errorf("storetest: verify order: open: %w", err)
		}
		defer func() {
			if s, err := db.DB(); err == nil {
				s.Close()
			}
		}()
		st, err := eventstore.New(db, testkit.NewRegistry(), c.Options)
		if err != nil {
			return nil, fmt.Errorf("storetest: verify order: %w", err)
		}
		stores = append(stores, st)
	}
	if err := stores[0].Migrate(ctx); err != nil {
		return nil, fmt.Errorf("storetest: verify order: %w", err)
	}

	followers := []*follower{
		follow(ctx, stores[0], "Subscribe on store 1 from the start"),
		follow(ctx, stores[1], "Subscribe on store 2 from the start"),
	}
	var (
		written  atomic.Int64
		half     = make(chan struct{})
		once     sync.Once
		progress sync.Mutex
		wg       sync.WaitGroup
		acked    = make([][]event.Event, writers)
		errs     = make([]error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			last := 0
			acked[w], errs[w] = writeTicks(ctx, stores[w%len(stores)], w, total/writers, func(n int) {
				now := written.Add(int64(n - last))
				last = n
				if now >= int64(total/2) {
					once.Do(func() { close(half) })
				}
				if c.Progress != nil {
					progress.Lock()
					c.Progress(int(now), total)
					progress.Unlock()
				}
			})
			if errs[w] != nil {
				cancel()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-half:
	case <-done:
	}
	followers = append(followers, follow(ctx, stores[1], "Subscribe started midway"))
	<-done
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("storetest: verify order: %w", err)
	}

	r := &OrderReport{acked: slices.Concat(acked...)}
	slices.SortFunc(r.acked, func(a, b event.Event) int { return cmp.Compare(a.Position, b.Position) })
	r.Written = len(r.acked)

	var all []event.Event
	for e, err := range stores[0].ReadAll(ctx, 0, 0) {
		if err != nil {
			return nil, fmt.Errorf("storetest: verify order: %w", err)
		}
		all = append(all, e)
	}
	r.add("ReadAll once the writers are done", all)
	for _, f := range followers {
		got, err := f.await(r.acked)
		if err != nil {
			return nil, fmt.Errorf("storetest: verify order: %s: %w", f.name, err)
		}
		r.add(f.name, got)
	}
	return r, nil
}

// add measures what a reader got against the acknowledged events.
func (r *OrderReport) add(name string, got []event.Event) {
	rr := ReaderReport{Name: name, Received: len(got)}
	want := make(map[uuid.UUID]bool, len(r.acked))
	for _, e := range r.acked {
		want[e.ID] = true
	}
	seen := make(map[uuid.UUID]bool, len(got))
	for i, e := range got {
		switch {
		case seen[e.ID]:
			rr.Repeated++
		case !want[e.ID]:
			rr.Unexpected++
		}
		seen[e.ID] = true
		if i > 0 && e.Position <= got[i-1].Position {
			rr.OutOfOrder++
		}
	}
	for id := range want {
		if !seen[id] {
			rr.Skipped++
		}
	}
	r.Readers = append(r.Readers, rr)
	r.received = append(r.received, got)
}

// follower consumes a subscription in a goroutine and keeps what it gets.
type follower struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	got []event.Event
	err error // the error that ended the subscription
}

func follow(ctx context.Context, s *eventstore.Store, name string) *follower {
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for e, err := range s.Subscribe(ctx, 0) {
			f.mu.Lock()
			if err != nil {
				f.err = err
				f.mu.Unlock()
				return
			}
			f.got = append(f.got, e)
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *follower) progress() (n int, last int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) > 0 {
		last = f.got[len(f.got)-1].Position
	}
	return len(f.got), last
}

// stallTimeout is how long a subscription may go without a new event
// before VerifyOrder gives up on it.
const stallTimeout = 30 * time.Second

// await waits until the follower has as many events as want, or one at or
// past want's last position (a subscription that skipped must not keep
// the check waiting), gives it a moment to show a repeated event, stops
// it and returns what it got.
func (f *follower) await(want []event.Event) ([]event.Event, error) {
	defer f.cancel()
	var end int64
	if len(want) > 0 {
		end = want[len(want)-1].Position
	}
	last, lastChange := -1, time.Now()
	for {
		n, pos := f.progress()
		if n >= len(want) || pos >= end {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > stallTimeout {
			return nil, fmt.Errorf("stuck at %d events (position %d) for %v, want %d events up to position %d", n, pos, stallTimeout, len(want), end)
		}
		select {
		case <-f.done:
			f.mu.Lock()
			err := f.err
			f.mu.Unlock()
			return nil, fmt.Errorf("ended after %d events: %w", n, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	time.Sleep(50 * time.Millisecond)
	f.cancel()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if !errors.Is(f.err, context.Canceled) {
		return nil, fmt.Errorf("ended with %v, want context.Canceled", f.err)
	}
	return slices.Clone(f.got), nil
}
