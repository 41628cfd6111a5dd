package aggregate_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
)

// Handlers are called directly when their event type was registered with
// an event.Registry, and through reflection otherwise. The Counter
// aggregate has the same handlers for the Reg* event types, which
// registerRegEvents registers, and for the Unreg* ones, which are never
// registered; the tests run each case on both paths.

type (
	RegAdded      struct{ N int }
	RegChecked    struct{ N int }
	RegPromoted   struct{ N int }
	RegShared     struct{ N int }
	UnregAdded    struct{ N int }
	UnregChecked  struct{ N int }
	UnregPromoted struct{ N int }
	UnregShared   struct{ N int }
)

func registerRegEvents() {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[RegAdded](reg, "reg.added")
	event.MustRegister[RegChecked](reg, "reg.checked")
	event.MustRegister[RegPromoted](reg, "reg.promoted")
	event.MustRegister[RegShared](reg, "reg.shared")
}

var errNegative = errors.New("negative")

// counterBase holds the Root; its handlers are promoted from a field
// embedded by value.
type counterBase struct {
	aggregate.Root
	Promoted int
}

func (b *counterBase) OnRegPromoted(e RegPromoted) error     { b.Promoted += e.N; return nil }
func (b *counterBase) OnUnregPromoted(e UnregPromoted) error { b.Promoted += e.N; return nil }

// tally's handlers are promoted from a field embedded by value, two levels
// down. (A field embedded by pointer would put its methods in Counter's
// value method set, which Check rejects as value receivers.)
type tally struct{ Shared int }

func (t *tally) OnRegShared(e RegShared)     { t.Shared += e.N }
func (t *tally) OnUnregShared(e UnregShared) { t.Shared += e.N }

type Counter struct {
	counterBase
	inner
	Added, Checked int
}

type inner struct{ tally }

func (c *Counter) OnRegAdded(e RegAdded)     { c.Added += e.N }
func (c *Counter) OnUnregAdded(e UnregAdded) { c.Added += e.N }

func (c *Counter) OnRegChecked(e RegChecked) error { return c.check(e.N) }

func (c *Counter) OnUnregChecked(e UnregChecked) error { return c.check(e.N) }

func (c *Counter) check(n int) error {
	if n < 0 {
		return errNegative
	}
	c.Checked += n
	return nil
}

func (c *Counter) counts() [4]int { return [4]int{c.Added, c.Checked, c.Promoted, c.Shared} }

func newCounter(t testing.TB) *Counter {
	t.Helper()
	c, err := aggregate.New[Counter]("c")
	if err != nil {
		t.Fatalf("New[Counter]: %v", err)
	}
	return c
}

// dispatchPath makes the events of one path.
type dispatchPath struct {
	name                             string
	direct                           bool
	added, checked, promoted, shared func(n int) any
}

var dispatchPaths = []dispatchPath{
	{"registered", true,
		func(n int) any { return RegAdded{n} }, func(n int) any { return RegChecked{n} },
		func(n int) any { return RegPromoted{n} }, func(n int) any { return RegShared{n} }},
	{"unregistered", false,
		func(n int) any { return UnregAdded{n} }, func(n int) any { return UnregChecked{n} },
		func(n int) any { return UnregPromoted{n} }, func(n int) any { return UnregShared{n} }},
}

// eventForms pass events as values or as pointers to them.
var eventForms = []struct {
	name string
	of   func(v any) any
}{
	{"values", func(v any) any { return v }},
	{"pointers", func(v any) any {
		p := reflect.New(reflect.TypeOf(v))
		p.Elem().Set(reflect.ValueOf(v))
		return p.Interface()
	}},
}

func TestDispatchPaths(t *testing.T) {
	registerRegEvents()
	for _, p := range dispatchPaths {
		for _, form := range eventForms {
			events := func(n ...int) []any {
				return []any{form.of(p.added(n[0])), form.of(p.checked(n[1])), form.of(p.promoted(n[2])), form.of(p.shared(n[3]))}
			}
			t.Run(p.name+"/"+form.name, func(t *testing.T) {
				for _, e := range events(0, 0, 0, 0) {
					if got := aggregate.Direct[Counter](e); got != p.direct {
						t.Errorf("Direct[Counter](%T) = %v, want %v", e, got, p.direct)
					}
				}
				t.Run("apply calls every handler", func(t *testing.T) {
					c := newCounter(t)
					if err := c.Apply(events(1, 2, 3, 4)...); err != nil {
						t.Fatalf("Apply: %v", err)
					}
					if got, want := c.counts(), [4]int{1, 2, 3, 4}; got != want || c.Version() != 4 {
						t.Errorf("after Apply: counts %v version %d, want %v version 4", got, c.Version(), want)
					}
				})
				t.Run("replay calls every handler", func(t *testing.T) {
					c := newCounter(t)
					for i, e := range events(5, 6, 7, 8) {
						if err := aggregate.Replay(&c.Root, &event.Event{Version: int64(i + 1), Data: e}); err != nil {
							t.Fatalf("Replay(%T): %v", e, err)
						}
					}
					if got, want := c.counts(), [4]int{5, 6, 7, 8}; got != want || c.CommittedVersion() != 4 || len(c.Changes()) != 0 {
						t.Errorf("after Replay: counts %v committed %d changes %d, want %v, 4, 0", got, c.CommittedVersion(), len(c.Changes()), want)
					}
				})
				t.Run("handler error stops apply", func(t *testing.T) {
					c := newCounter(t)
					e := events(1, -1, 1, 1)
					err := c.Apply(e[0], e[1], e[2])
					if !errors.Is(err, errNegative) {
						t.Fatalf("Apply = %v, want errNegative", err)
					}
					method := "On" + strings.TrimPrefix(strings.TrimPrefix(fmt.Sprintf("%T", e[1]), "*"), "aggregate_test.")
					if !strings.Contains(err.Error(), method) || !strings.Contains(err.Error(), "*aggregate_test.Counter") {
						t.Errorf("error %q does not name (*aggregate_test.Counter).%s", err, method)
					}
					if got, want := c.counts(), [4]int{1, 0, 0, 0}; got != want || c.Version() != 1 {
						t.Errorf("after failing Apply: counts %v version %d, want %v version 1", got, c.Version(), want)
					}
					err = aggregate.Replay(&c.Root, &event.Event{Version: 2, Type: "checked", Data: e[1]})
					if !errors.Is(err, errNegative) || !strings.Contains(err.Error(), method) {
						t.Errorf("Replay = %v, want errNegative from %s", err, method)
					}
				})
				if form.name == "pointers" {
					t.Run("nil pointer event is an error", func(t *testing.T) {
						c := newCounter(t)
						for _, e := range events(0, 0, 0, 0) {
							nilPtr := reflect.Zero(reflect.TypeOf(e)).Interface()
							name := reflect.TypeOf(e).Elem().Name()
							want := fmt.Sprintf("(*aggregate_test.Counter).On%s: nil *aggregate_test.%s event", name, name)
							if err := c.Apply(nilPtr); err == nil || !strings.Contains(err.Error(), want) {
								t.Errorf("Apply(nil %T) = %v, want an error containing %q", nilPtr, err, want)
							}
						}
						if c.Version() != 0 || c.counts() != [4]int{} {
							t.Errorf("after nil events: counts %v version %d", c.counts(), c.Version())
						}
					})
				}
			})
		}
	}
}

// An aggregate type whose handlers were resolved before their event type
// was registered switches to direct calls once it is.

type LateNoted struct{ Text string }

type Notebook struct {
	aggregate.Root
	Notes []string
}

func (n *Notebook) OnLateNoted(e LateNoted) { n.Notes = append(n.Notes, e.Text) }

func TestDispatchRegisteredLate(t *testing.T) {
	if aggregate.Direct[Notebook](LateNoted{}) {
		t.Skip("LateNoted was registered by an earlier run (-count)")
	}
	if err := aggregate.Check[Notebook](LateNoted{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	nb, err := aggregate.New[Notebook]("n")
	if err != nil {
		t.Fatal(err)
	}
	if err := nb.Apply(LateNoted{"a"}); err != nil {
		t.Fatalf("Apply before registration: %v", err)
	}
	if aggregate.Direct[Notebook](LateNoted{}) {
		t.Fatalf("Direct before registration = true, want false")
	}
	event.MustRegister[LateNoted](event.NewRegistry(event.RegistryOptions{}), "late.noted")
	if err := nb.Apply(LateNoted{"b"}, &LateNoted{"c"}); err != nil {
		t.Fatalf("Apply after registration: %v", err)
	}
	if !aggregate.Direct[Notebook](LateNoted{}) || !aggregate.Direct[Notebook](&LateNoted{}) {
		t.Errorf("Direct after registration = false, want true")
	}
	if got := strings.Join(nb.Notes, ","); got != "a,b,c" || nb.Version() != 3 {
		t.Errorf("Notes = %q version %d, want \"a,b,c\" version 3", got, nb.Version())
	}
}

// Aggregates applying events concurrently while their event types are
// being registered: for the race detector.

type (
	RaceUp   struct{ N int }
	RaceDown struct{ N int }
)

type Gauge struct {
	aggregate.Root
	Level int
}

func (g *Gauge) OnRaceUp(e RaceUp)           { g.Level += e.N }
func (g *Gauge) OnRaceDown(e RaceDown) error { g.Level -= e.N; return nil }

func TestDispatchConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	wg.Go(func() {
		reg := event.NewRegistry(event.RegistryOptions{})
		event.MustRegister[RaceUp](reg, "race.up")
		event.MustRegister[RaceDown](reg, "race.down")
	})
	for range 8 {
		wg.Go(func() {
			g, err := aggregate.New[Gauge]("g")
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 200 {
				if err := g.Apply(RaceUp{2}, &RaceDown{1}); err != nil {
					t.Errorf("Apply #%d: %v", i, err)
					return
				}
			}
			if g.Level != 200 {
				t.Errorf("Level = %d, want 200", g.Level)
			}
		})
	}
	wg.Wait()
	if !aggregate.Direct[Gauge](RaceUp{}) || !aggregate.Direct[Gauge](&RaceDown{}) {
		t.Errorf("Direct after registration = false, want true")
	}
}
