package main

// A1: loading an aggregate of 1,000 events through the repository and
// On<Event> dispatch, against the floor: the same events read with
// ReadStream and folded through a hand-written type switch into the same
// struct.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
)

// Account is A1's aggregate: a bank account with one handler per event
// type, as an application writes it.
type Account struct {
	aggregate.Root
	Owner       string
	Balance     int64
	Deposits    int
	Withdrawals int
	LastMemo    string
	Frozen      bool
}

// The account's events: each about 100 bytes of JSON, like payload.
type (
	AccountOpened struct {
		ID    string
		Owner string
	}
	Deposited struct {
		ID     string
		Amount int64
		Memo   string
	}
	Withdrawn struct {
		ID     string
		Amount int64
		Memo   string
	}
	AccountFrozen   struct{ Reason string }
	AccountUnfrozen struct{ Reason string }
)

var errFrozen = errors.New("account is frozen")

func (a *Account) OnAccountOpened(e AccountOpened) { a.Owner = e.Owner }

func (a *Account) OnDeposited(e Deposited) {
	a.Balance += e.Amount
	a.Deposits++
	a.LastMemo = e.Memo
}

func (a *Account) OnWithdrawn(e Withdrawn) error {
	if a.Frozen {
		return errFrozen
	}
	a.Balance -= e.Amount
	a.Withdrawals++
	a.LastMemo = e.Memo
	return nil
}

func (a *Account) OnAccountFrozen(AccountFrozen) { a.Frozen = true }

func (a *Account) OnAccountUnfrozen(AccountUnfrozen) { a.Frozen = false }

// foldSwitch is the floor's fold: a hand-written type switch calling the
// same handlers.
func foldSwitch(a *Account, e any) error {
	switch e := e.(type) {
	case AccountOpened:
		a.OnAccountOpened(e)
	case Deposited:
		a.OnDeposited(e)
	case Withdrawn:
		return a.OnWithdrawn(e)
	case AccountFrozen:
		a.OnAccountFrozen(e)
	case AccountUnfrozen:
		a.OnAccountUnfrozen(e)
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}

// accountState is what a load must rebuild, for checking it.
type accountState struct {
	Owner                 string
	Balance               int64
	Deposits, Withdrawals int
	LastMemo              string
	Frozen                bool
}

func (a *Account) state() accountState {
	return accountState{a.Owner, a.Balance, a.Deposits, a.Withdrawals, a.LastMemo, a.Frozen}
}

// MarshalSnapshot makes Account an aggregate.Snapshotter, for A1S: its
// state as JSON.
func (a *Account) MarshalSnapshot() ([]byte, error) { return json.Marshal(a.state()) }

// UnmarshalSnapshot restores the state MarshalSnapshot wrote.
func (a *Account) UnmarshalSnapshot(data []byte) error {
	var s accountState
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	a.Owner, a.Balance, a.Deposits, a.Withdrawals, a.LastMemo, a.Frozen = s.Owner, s.Balance, s.Deposits, s.Withdrawals, s.LastMemo, s.Frozen
	return nil
}

var _ aggregate.Snapshotter = (*Account)(nil)

// ListedAccount is Account with its handlers listed for direct calls
// (aggregate.Handlers), for A1H; Account's are called by reflection.
type ListedAccount struct{ Account }

// Handlers makes ListedAccount an aggregate.Handlers.
func (*ListedAccount) Handlers() []aggregate.Handler[ListedAccount] {
	return []aggregate.Handler[ListedAccount]{
		aggregate.On((*ListedAccount).OnAccountOpened),
		aggregate.On((*ListedAccount).OnDeposited),
		aggregate.OnErr((*ListedAccount).OnWithdrawn),
		aggregate.On((*ListedAccount).OnAccountFrozen),
		aggregate.On((*ListedAccount).OnAccountUnfrozen),
	}
}

var _ aggregate.Handlers[ListedAccount] = (*ListedAccount)(nil)

// account is the constraint of the aggregates A1 loads: *Account and
// *ListedAccount.
type account[A any] interface {
	aggregate.Pointer[A]
	state() accountState
	Version() int64
}

// registerAccountEvents registers the account's events with reg.
func registerAccountEvents(reg *event.Registry) error {
	return errors.Join(
		event.Register[AccountOpened](reg, "bench.account_opened"),
		event.Register[Deposited](reg, "bench.deposited"),
		event.Register[Withdrawn](reg, "bench.withdrawn"),
		event.Register[AccountFrozen](reg, "bench.account_frozen"),
		event.Register[AccountUnfrozen](reg, "bench.account_unfrozen"),
	)
}

// accountEvents returns the n events of the benchmark's account: opened,
// then a repeating mix of deposits, withdrawals, freezes and unfreezes.
func accountEvents(n int) []any {
	memo := strings.Repeat("benchmark memo ", 3)
	evs := make([]any, n)
	for i := range evs {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		switch {
		case i == 0:
			evs[i] = AccountOpened{ID: id, Owner: "benchmark account owner"}
		case i%6 == 3:
			evs[i] = Withdrawn{ID: id, Amount: int64(i % 50), Memo: memo}
		case i%6 == 4:
			evs[i] = AccountFrozen{Reason: memo}
		case i%6 == 5:
			evs[i] = AccountUnfrozen{Reason: memo}
		default:
			evs[i] = Deposited{ID: id, Amount: int64(i % 100), Memo: memo}
		}
	}
	return evs
}

// accountID is the ID of the benchmark's account.
const accountID = "1"

// newAccount saves an account of n events through repo, in one append,
// and returns the state a load must rebuild.
func newAccount[A any, P account[A]](ctx context.Context, repo *aggregate.Repository[A], n int) (accountState, error) {
	a, err := aggregate.New[A, P](accountID)
	if err != nil {
		return accountState{}, err
	}
	if err := aggregate.Apply(a, accountEvents(n)...); err != nil {
		return accountState{}, err
	}
	if _, err := repo.Save(ctx, (*A)(a)); err != nil {
		return accountState{}, err
	}
	return a.state(), nil
}

// extraFold is the key of A1's in-memory replay figure, in ns per event.
const extraFold = "fold"

// extraReflectFold is the key of A1's in-memory replay through a plain
// reflect.Value.Call of each handler, in ns per event: a reference figure
// for dispatch by reflection, measured on the floor's side.
const extraReflectFold = "reflect_fold"

// snapshotLoadFactor multiplies the loads of A1S, which are some 20 times
// faster than A1's, so that a run lasts long enough to measure.
const snapshotLoadFactor = 10

// loadAggregate is the Cairn side of A1 (A: Account) and A1H (A:
// ListedAccount): Repository.Load, from the first event or (snapshot, A1S)
// from a snapshot at the last event. Without a snapshot it also measures
// the replay alone, with the events already decoded in memory: the cost of
// dispatch that the database hides.
func loadAggregate[A any, P account[A]](snapshot bool) measureFunc {
	return func(ctx context.Context, db *database, sz sizes) (sample, error) {
		c, err := newCairn(ctx, db)
		if err != nil {
			return sample{}, err
		}
		opts := aggregate.Options{}
		if snapshot {
			opts.SnapshotEvery = sz.a1Events
		}
		repo, err := aggregate.NewRepository[A](c.s, "account", opts)
		if err != nil {
			return sample{}, err
		}
		want, err := newAccount[A, P](ctx, repo, sz.a1Events)
		if err != nil {
			return sample{}, err
		}
		if snapshot {
			snap, ok, err := c.s.LoadSnapshot(ctx, repo.StreamID(accountID))
			if err != nil || !ok || snap.Version != int64(sz.a1Events) {
				return sample{}, fmt.Errorf("no snapshot at version %d: %v, %v", sz.a1Events, ok, err)
			}
		}
		load := func(repo *aggregate.Repository[A]) error {
			a, err := repo.Load(ctx, accountID)
			if err != nil {
				return err
			}
			return checkAccount(P(a).Version(), int64(sz.a1Events), P(a).state(), want)
		}
		loads := sz.a1Loads
		if snapshot {
			loads *= snapshotLoadFactor
		}
		smp, err := timed(loads, func() error {
			for range loads {
				if err := load(repo); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || snapshot {
			return smp, err
		}

		mem, err := readToMemory(ctx, c, repo.StreamID(accountID))
		if err != nil {
			return sample{}, err
		}
		memRepo, err := aggregate.NewRepository[A](mem, "account", aggregate.Options{})
		if err != nil {
			return sample{}, err
		}
		ns, err := nsPerEvent(sz.a1MemLoads*len(mem.events), func() error {
			for range sz.a1MemLoads {
				if err := load(memRepo); err != nil {
					return err
				}
			}
			return nil
		})
		smp.extras = map[string]float64{extraFold: ns}
		return smp, err
	}
}

// loadAggregateFloor is A1's floor: the stream read with Cairn's
// ReadStream (the same reads and decoding as a load), folded through
// foldSwitch into a new Account. It also measures the fold alone over the
// events decoded in memory.
func loadAggregateFloor(ctx context.Context, db *database, sz sizes) (sample, error) {
	c, err := newCairn(ctx, db)
	if err != nil {
		return sample{}, err
	}
	repo, err := aggregate.NewRepository[Account](c.s, "account", aggregate.Options{})
	if err != nil {
		return sample{}, err
	}
	want, err := newAccount(ctx, repo, sz.a1Events)
	if err != nil {
		return sample{}, err
	}
	stream := repo.StreamID(accountID)
	load := func(r event.StreamReader) error {
		a := new(Account)
		var version int64
		for e, err := range r.ReadStream(ctx, stream, 0, 0) {
			if err != nil {
				return err
			}
			if err := foldSwitch(a, e.Data); err != nil {
				return fmt.Errorf("%s@%d: %w", stream, e.Version, err)
			}
			version = e.Version
		}
		return checkAccount(version, int64(sz.a1Events), a.state(), want)
	}
	smp, err := timed(sz.a1Loads, func() error {
		for range sz.a1Loads {
			if err := load(c.s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return smp, err
	}

	mem, err := readToMemory(ctx, c, stream)
	if err != nil {
		return sample{}, err
	}
	ns, err := nsPerEvent(sz.a1MemLoads*len(mem.events), func() error {
		for range sz.a1MemLoads {
			if err := load(mem); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return smp, err
	}
	fold, err := reflectFold(mem.events[0].Data)
	if err != nil {
		return smp, err
	}
	nsReflect, err := nsPerEvent(sz.a1MemLoads*len(mem.events), func() error {
		for range sz.a1MemLoads {
			a := new(Account)
			for _, e := range mem.events {
				if err := fold(a, e.Data); err != nil {
					return fmt.Errorf("%s@%d: %w", stream, e.Version, err)
				}
			}
			if err := checkAccount(int64(len(mem.events)), int64(sz.a1Events), a.state(), want); err != nil {
				return err
			}
		}
		return nil
	})
	smp.extras = map[string]float64{extraFold: ns, extraReflectFold: nsReflect}
	return smp, err
}

// reflectFold returns a fold that calls Account's handler for each event
// with reflect.Value.Call, the handler found in a map by the event's type:
// dispatch by reflection with nothing else around it. first is an event,
// to check that the methods were found.
func reflectFold(first any) (func(a *Account, e any) error, error) {
	methods := map[reflect.Type]reflect.Value{}
	for m := range reflect.TypeFor[*Account]().Methods() {
		if strings.HasPrefix(m.Name, "On") && m.Type.NumIn() == 2 {
			methods[m.Type.In(1)] = m.Func
		}
	}
	if _, ok := methods[reflect.TypeOf(first)]; !ok {
		return nil, fmt.Errorf("no handler for %T", first)
	}
	return func(a *Account, e any) error {
		out := methods[reflect.TypeOf(e)].Call([]reflect.Value{reflect.ValueOf(a), reflect.ValueOf(e)})
		if len(out) == 1 && !out[0].IsNil() {
			return out[0].Interface().(error)
		}
		return nil
	}, nil
}

func checkAccount(version, wantVersion int64, got, want accountState) error {
	if version != wantVersion {
		return fmt.Errorf("loaded account at version %d, want %d", version, wantVersion)
	}
	if got != want {
		return fmt.Errorf("loaded account %+v, want %+v", got, want)
	}
	return nil
}

// foldRounds is how many times nsPerEvent runs its function: a replay from
// memory takes milliseconds, so one preemption or GC cycle on a busy
// machine shows; the fastest round is the figure.
const foldRounds = 5

// nsPerEvent runs fn, which handles n events, foldRounds times and returns
// the fastest round's time per event in nanoseconds.
func nsPerEvent(n int, fn func() error) (float64, error) {
	best := 0.0
	for range foldRounds {
		smp, err := timed(n, fn)
		if err != nil {
			return 0, err
		}
		best = max(best, smp.value)
	}
	return 1e9 / best, nil
}

// memStream is one stream's decoded events in memory: a store for
// replaying without a database.
type memStream struct {
	stream string
	events []event.Event
}

var _ aggregate.Store = (*memStream)(nil)

// readToMemory reads stream from c's store.
func readToMemory(ctx context.Context, c *cairnSubject, stream string) (*memStream, error) {
	m := &memStream{stream: stream}
	for e, err := range c.s.ReadStream(ctx, stream, 0, 0) {
		if err != nil {
			return nil, err
		}
		m.events = append(m.events, e)
	}
	return m, nil
}

func (m *memStream) Append(context.Context, string, event.ExpectedVersion, []any, ...event.AppendOption) ([]event.Event, error) {
	return nil, errors.New("memStream is read-only")
}

func (m *memStream) ReadStream(_ context.Context, stream string, from int64, limit int) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		if stream != m.stream {
			return
		}
		n := 0
		for _, e := range m.events {
			if e.Version < from {
				continue
			}
			if limit > 0 && n == limit {
				return
			}
			n++
			if !yield(e, nil) {
				return
			}
		}
	}
}
