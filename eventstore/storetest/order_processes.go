package storetest

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// ProcessOrder configures [CheckProcessOrder]. The zero value works.
type ProcessOrder struct {
	// WriterProcesses is how many child processes append, each with
	// WritersPerProcess concurrent writers; zero means 4 and 2.
	WriterProcesses, WritersPerProcess int
	// SubscriberProcesses is how many more child processes follow the
	// store with a live subscription from its start, while the writers
	// write; zero means 2.
	SubscriberProcesses int
	// Events is how many events the writers append in all; zero means
	// Config.OrderingEvents (or its default).
	Events int
	// Subscribe, if set, is the read the subscriber processes follow the
	// store with, in place of [eventstore.Store.Subscribe]: to check a
	// reader of your own, or that the check finds the faults of one that
	// is known to be wrong.
	Subscribe func(ctx context.Context, s *eventstore.Store, after int64) iter.Seq2[event.Event, error]
	// Stall is how long a subscriber may receive nothing before the check
	// gives up on it (the events it has not received count as skipped);
	// zero means 30 seconds.
	Stall time.Duration
}

func (oc ProcessOrder) withDefaults(s *suite) ProcessOrder {
	if oc.WriterProcesses == 0 {
		oc.WriterProcesses = 4
	}
	if oc.WritersPerProcess == 0 {
		oc.WritersPerProcess = 2
	}
	if oc.SubscriberProcesses == 0 {
		oc.SubscriberProcesses = 2
	}
	if oc.Events == 0 {
		oc.Events = s.orderingEvents()
	}
	if oc.Stall == 0 {
		oc.Stall = 30 * time.Second
	}
	return oc
}

// ProcessOrderReport is what the subscribers of [CheckProcessOrder] received, compared
// with the events the writers' appends acknowledged. The counts add up
// over the subscribers.
type ProcessOrderReport struct {
	// Acknowledged is the number of events the appends acknowledged.
	Acknowledged int
	// Subscribers is the number of subscriptions that were checked.
	Subscribers int
	// Skipped counts acknowledged events a subscriber never received.
	Skipped int
	// Repeated counts events a subscriber received again.
	Repeated int
	// OutOfOrder counts events a subscriber received after an event at the
	// same or a greater position.
	OutOfOrder int
	// Unknown counts events a subscriber received that no append
	// acknowledged, or with another position than the acknowledged one.
	Unknown int
}

// Faults returns the sum of the counts of faults.
func (r ProcessOrderReport) Faults() int { return r.Skipped + r.Repeated + r.OutOfOrder + r.Unknown }

func (r ProcessOrderReport) String() string {
	return fmt.Sprintf("%d acknowledged events, %d subscribers: %d skipped, %d repeated, %d out of order, %d unknown",
		r.Acknowledged, r.Subscribers, r.Skipped, r.Repeated, r.OutOfOrder, r.Unknown)
}

// CheckProcessOrder checks invariant 2 across processes, on a new database of
// cfg's: it starts oc.SubscriberProcesses child processes that follow the
// store from its start with live subscriptions, then oc.WriterProcesses
// child processes whose writers append to streams of their own (with now
// and then an append that fails), waits for the writers, and waits until
// every subscriber has received up to the last acknowledged event. It
// returns what the subscribers got wrong, and fails t only when the check
// itself could not run; the conformance suite ([Run]) runs it and wants a
// report with no faults.
//
// Like Run, it starts the test binary again as the child processes, which
// run t's test with -test.run: there CheckProcessOrder plays the child's part and
// ends the test (t.SkipNow). Call it once per test, and not in a test that
// calls Run.
func CheckProcessOrder(t *testing.T, cfg Config, oc ProcessOrder) ProcessOrderReport {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	if spec, ok := childFromEnv(t); ok {
		runChild(t, cfg, spec, oc.Subscribe)
		return ProcessOrderReport{}
	}
	s := &suite{cfg: cfg, caller: t}
	return checkOrder(t, s, oc)
}

// testOrderAcrossProcesses is the suite's part: the check with the store's
// own Subscribe finds no fault.
func testOrderAcrossProcesses(t *testing.T, s *suite) {
	rep := checkOrder(t, s, ProcessOrder{})
	t.Logf("%v", rep)
	if rep.Faults() != 0 || rep.Subscribers == 0 {
		t.Errorf("subscriptions in other processes than the writers': %v; want no fault", rep)
	}
}

// followLine starts each line a subscriber process prints per event.
const followLine = "cairn storetest: event "

func checkOrder(t *testing.T, s *suite, oc ProcessOrder) ProcessOrderReport {
	oc = oc.withDefaults(s)
	writers := oc.WriterProcesses * oc.WritersPerProcess
	perWriter := max(1, oc.Events/writers)
	db := s.database(t)
	db.migrated(t)

	// The subscribers print a line per event; the check reads them as
	// they come.
	type received struct {
		mu   sync.Mutex
		evs  []event.Event
		last time.Time
		err  string
	}
	subs := make([]*received, oc.SubscriberProcesses)
	var followers []*testkit.Child
	for i := range subs {
		r := &received{last: time.Now()}
		subs[i] = r
		followers = append(followers, s.startChildWith(t, childSpec{Role: "follow", DSN: db.dsn}, testkit.ChildOptions{
			OnLine: func(_ *testkit.Child, line string) {
				rest, ok := strings.CutPrefix(line, followLine)
				if !ok {
					return
				}
				r.mu.Lock()
				defer r.mu.Unlock()
				r.last = time.Now()
				e, err := parseFollowed(rest)
				if err != nil {
					r.err = err.Error()
					return
				}
				r.evs = append(r.evs, e)
			},
		}))
	}
	for _, c := range followers {
		c.Release(t)
	}

	dir := t.TempDir()
	var children []*testkit.Child
	for p := range oc.WriterProcesses {
		children = append(children, s.startChild(t, childSpec{
			Role:    "write",
			DSN:     db.dsn,
			First:   p * oc.WritersPerProcess,
			Writers: oc.WritersPerProcess,
			Events:  perWriter,
			Out:     filepath.Join(dir, fmt.Sprintf("acked-%d.json", p)),
		}))
	}
	for _, c := range children {
		c.Release(t)
	}
	var acked []event.Event
	for p, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer process %d: %v", p, err)
		}
		evs, err := readAcked(filepath.Join(dir, fmt.Sprintf("acked-%d.json", p)))
		if err != nil {
			t.Fatalf("acknowledged events of writer process %d: %v", p, err)
		}
		acked = append(acked, evs...)
	}
	if len(acked) != perWriter*writers {
		t.Fatalf("%d appended events were acknowledged, want %d", len(acked), perWriter*writers)
	}
	slices.SortFunc(acked, func(a, b event.Event) int { return cmp.Compare(a.Position, b.Position) })
	end := acked[len(acked)-1].Position

	// Wait until each subscriber has received the last event (or one past
	// it, or as many events), or has received nothing for oc.Stall.
	for i, r := range subs {
		for {
			r.mu.Lock()
			n, last, since, err := len(r.evs), int64(0), time.Since(r.last), r.err
			if n > 0 {
				last = r.evs[n-1].Position
			}
			r.mu.Unlock()
			if err != "" {
				t.Fatalf("subscriber process %d: %s", i, err)
			}
			if n >= len(acked) || last >= end {
				break
			}
			if since > oc.Stall {
				t.Logf("subscriber process %d received nothing for %v, at %d events (position %d) of %d (position %d)",
					i, oc.Stall, n, last, len(acked), end)
				break
			}
			select {
			case <-followers[i].Done():
				t.Fatalf("subscriber process %d ended: %v", i, followers[i].Wait())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	// A moment for repeated events to show, then stop the subscribers.
	time.Sleep(100 * time.Millisecond)
	for _, c := range followers {
		c.Kill()
		<-c.Done()
	}

	rep := ProcessOrderReport{Acknowledged: len(acked), Subscribers: len(subs)}
	for _, r := range subs {
		r.mu.Lock()
		tally(&rep, acked, r.evs)
		r.mu.Unlock()
	}
	return rep
}

// tally adds to rep what got, a subscriber's events in the order received,
// did wrong against acked, in position order.
func tally(rep *ProcessOrderReport, acked, got []event.Event) {
	at := make(map[uuid.UUID]int64, len(acked))
	for _, e := range acked {
		at[e.ID] = e.Position
	}
	seen := make(map[uuid.UUID]bool, len(got))
	for i, e := range got {
		if i > 0 && e.Position <= got[i-1].Position {
			rep.OutOfOrder++
		}
		if seen[e.ID] {
			rep.Repeated++
			continue
		}
		seen[e.ID] = true
		if pos, ok := at[e.ID]; !ok || pos != e.Position {
			rep.Unknown++
		}
	}
	for _, e := range acked {
		if !seen[e.ID] {
			rep.Skipped++
		}
	}
}

// followStore is the part of a subscriber process: it follows the store from
// its start and prints a line per event until it is killed.
func followStore(t *testing.T, st *eventstore.Store, subscribe func(context.Context, *eventstore.Store, int64) iter.Seq2[event.Event, error]) {
	if subscribe == nil {
		subscribe = func(ctx context.Context, s *eventstore.Store, after int64) iter.Seq2[event.Event, error] {
			return s.Subscribe(ctx, after)
		}
	}
	var b []byte
	for e, err := range subscribe(t.Context(), st, 0) {
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		b = append(b[:0], followLine...)
		b = strconv.AppendInt(b, e.Position, 10)
		b = append(b, ' ')
		b = append(b, e.ID.String()...)
		b = append(b, '\n')
		if _, err := os.Stdout.Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

// parseFollowed parses what follow prints after followLine.
func parseFollowed(s string) (event.Event, error) {
	pos, id, ok := strings.Cut(s, " ")
	if !ok {
		return event.Event{}, fmt.Errorf("subscriber printed %q", s)
	}
	var e event.Event
	var err error
	if e.Position, err = strconv.ParseInt(pos, 10, 64); err != nil {
		return event.Event{}, fmt.Errorf("subscriber printed %q: %w", s, err)
	}
	if e.ID, err = uuid.Parse(id); err != nil {
		return event.Event{}, fmt.Errorf("subscriber printed %q: %w", s, err)
	}
	return e, nil
}
