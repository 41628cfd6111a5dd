package aggregate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
)

// Two aggregates with the same handlers: Listed lists them for direct
// calls (aggregate.Handlers), Reflected does not. The tests run each case
// on both and expect the same outcome.

type (
	Added   struct{ N int }
	Checked struct{ N int }
	Shared  struct{ N int }
)

var errNegative = errors.New("negative")

// sharedBase holds the Root and a handler promoted from it.
type sharedBase struct {
	aggregate.Root
	Shared int
}

func (b *sharedBase) OnShared(e Shared) { b.Shared += e.N }

type Listed struct {
	sharedBase
	Added, Checked int
}

func (l *Listed) OnAdded(e Added) { l.Added += e.N }

func (l *Listed) OnChecked(e Checked) error {
	if e.N < 0 {
		return errNegative
	}
	l.Checked += e.N
	return nil
}

func (*Listed) Handlers() []aggregate.Handler[Listed] {
	return []aggregate.Handler[Listed]{
		aggregate.On((*Listed).OnAdded),
		aggregate.OnErr((*Listed).OnChecked),
		aggregate.On((*Listed).OnShared),
	}
}

var _ aggregate.Handlers[Listed] = (*Listed)(nil)

type Reflected struct {
	sharedBase
	Added, Checked int
}

func (r *Reflected) OnAdded(e Added) { r.Added += e.N }

func (r *Reflected) OnChecked(e Checked) error {
	if e.N < 0 {
		return errNegative
	}
	r.Checked += e.N
	return nil
}

// counts returns the state of a Listed or a Reflected.
func counts(agg any) [3]int {
	switch a := agg.(type) {
	case *Listed:
		return [3]int{a.Added, a.Checked, a.Shared}
	case *Reflected:
		return [3]int{a.Added, a.Checked, a.Shared}
	}
	panic("unknown aggregate")
}

// pathCase runs one scenario on a new aggregate of either type and
// returns its outcome as text.
type pathCase struct {
	name string
	run  func(apply func(...any) error, replay func(*event.Event) error) error
}

var pathCases = []pathCase{
	{"apply values and pointers", func(apply func(...any) error, _ func(*event.Event) error) error {
		return apply(Added{1}, &Checked{2}, Shared{3}, &Shared{4})
	}},
	{"replay", func(_ func(...any) error, replay func(*event.Event) error) error {
		for i, e := range []any{Added{5}, &Checked{6}, Shared{7}} {
			if err := replay(&event.Event{Version: int64(i + 1), Type: "t", Data: e}); err != nil {
				return err
			}
		}
		return nil
	}},
	{"handler error stops apply", func(apply func(...any) error, _ func(*event.Event) error) error {
		return apply(Added{1}, Checked{-1}, Added{1})
	}},
	{"handler error in replay", func(_ func(...any) error, replay func(*event.Event) error) error {
		return replay(&event.Event{Version: 1, Type: "checked", Data: Checked{-1}})
	}},
	{"nil pointer event", func(apply func(...any) error, _ func(*event.Event) error) error {
		return apply(Added{1}, (*Checked)(nil))
	}},
	{"nil pointer event in replay", func(_ func(...any) error, replay func(*event.Event) error) error {
		return replay(&event.Event{Version: 1, Type: "added", Data: (*Added)(nil)})
	}},
	{"missing handler", func(apply func(...any) error, _ func(*event.Event) error) error {
		return apply(Added{1}, TodoAdded{})
	}},
	{"nil event", func(apply func(...any) error, _ func(*event.Event) error) error {
		return apply(nil)
	}},
}

func TestDispatchPaths(t *testing.T) {
	for _, c := range pathCases {
		t.Run(c.name, func(t *testing.T) {
			l, r := new(Listed), new(Reflected)
			errL := c.run(func(e ...any) error { return aggregate.Apply(l, e...) }, func(e *event.Event) error { return aggregate.Replay(l, e) })
			errR := c.run(func(e ...any) error { return aggregate.Apply(r, e...) }, func(e *event.Event) error { return aggregate.Replay(r, e) })
			msgL := strings.ReplaceAll(msg(errL), "Listed", "X")
			msgR := strings.ReplaceAll(msg(errR), "Reflected", "X")
			if msgL != msgR || errors.Is(errL, errNegative) != errors.Is(errR, errNegative) ||
				errors.Is(errL, aggregate.ErrMissingHandler) != errors.Is(errR, aggregate.ErrMissingHandler) {
				t.Errorf("errors differ:\n direct:     %v\n reflection: %v", errL, errR)
			}
			if counts(l) != counts(r) || l.Version() != r.Version() || l.CommittedVersion() != r.CommittedVersion() || len(l.Changes()) != len(r.Changes()) {
				t.Errorf("states differ: direct %v v%d/%d, reflection %v v%d/%d",
					counts(l), l.Version(), l.CommittedVersion(), counts(r), r.Version(), r.CommittedVersion())
			}
			t.Logf("%v; %v", counts(l), errL)
		})
	}
}

// TestDispatchPathsThroughRepository loads the same stream into a Listed
// and a Reflected.
func TestDispatchPathsThroughRepository(t *testing.T) {
	store := newMemStore()
	listed, err := aggregate.NewRepository[Listed](store, "x", aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reflected, err := aggregate.NewRepository[Reflected](store, "x", aggregate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := listed.Load(t.Context(), "1")
	if err := aggregate.Apply(l, Added{1}, &Checked{2}, Shared{3}); err != nil {
		t.Fatal(err)
	}
	if _, err := listed.Save(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	l, err = listed.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := reflected.Load(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if counts(l) != [3]int{1, 2, 3} || counts(r) != counts(l) || l.Version() != 3 || r.Version() != 3 {
		t.Errorf("loaded %v v%d and %v v%d, want [1 2 3] at version 3", counts(l), l.Version(), counts(r), r.Version())
	}
}

// Broken Handlers lists.

type ListLeavesOut struct{ Listed }

func (*ListLeavesOut) Handlers() []aggregate.Handler[ListLeavesOut] {
	return []aggregate.Handler[ListLeavesOut]{aggregate.On((*ListLeavesOut).OnAdded), aggregate.On((*ListLeavesOut).OnShared)}
}

type ListTwice struct{ Listed }

func (*ListTwice) Handlers() []aggregate.Handler[ListTwice] {
	return []aggregate.Handler[ListTwice]{
		aggregate.On((*ListTwice).OnAdded), aggregate.On((*ListTwice).OnAdded),
		aggregate.OnErr((*ListTwice).OnChecked), aggregate.On((*ListTwice).OnShared),
	}
}

type ListOther struct{ Listed }

func (*ListOther) Handlers() []aggregate.Handler[ListOther] {
	return []aggregate.Handler[ListOther]{
		aggregate.On(func(*ListOther, Added) {}),
		aggregate.OnErr((*ListOther).OnChecked), aggregate.On((*ListOther).OnShared),
	}
}

type ListExtra struct{ Listed }

func (*ListExtra) Handlers() []aggregate.Handler[ListExtra] {
	return []aggregate.Handler[ListExtra]{
		aggregate.On((*ListExtra).OnAdded), aggregate.OnErr((*ListExtra).OnChecked), aggregate.On((*ListExtra).OnShared),
		aggregate.On(func(*ListExtra, TodoAdded) {}),
	}
}

type ListZero struct{ Listed }

func (*ListZero) Handlers() []aggregate.Handler[ListZero] {
	return []aggregate.Handler[ListZero]{
		aggregate.On((*ListZero).OnAdded), aggregate.OnErr((*ListZero).OnChecked), aggregate.On((*ListZero).OnShared),
		{}, aggregate.On[ListZero, Added](nil),
	}
}

func TestBadHandlerLists(t *testing.T) {
	tests := []struct {
		name  string
		check func() error
		want  []string
	}{
		{"leaves out a method", errorsOf[ListLeavesOut], []string{"(*aggregate_test.ListLeavesOut).Handlers() leaves out (*aggregate_test.ListLeavesOut).OnChecked"}},
		{"lists one twice", errorsOf[ListTwice], []string{"lists (*aggregate_test.ListTwice).OnAdded twice"}},
		{"lists another function", errorsOf[ListOther], []string{"a function for aggregate_test.Added that is not (*aggregate_test.ListOther).OnAdded"}},
		{"lists an event with no method", errorsOf[ListExtra], []string{"lists a handler of aggregate_test.TodoAdded, but *aggregate_test.ListExtra has no On… method taking it"}},
		{"lists zero handlers", errorsOf[ListZero], []string{"Handlers()[3] is a zero or nil Handler", "Handlers()[4] is a zero or nil Handler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check()
			if !errors.Is(err, aggregate.ErrInvalidHandler) {
				t.Fatalf("got %v, want ErrInvalidHandler", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
	if err := errorsOf[Listed](); err != nil {
		t.Errorf("Listed: %v", err)
	}
}
