package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
)

// Events of the examples' account.
type AccountOpened struct{ Owner string }
type MoneyDeposited struct{ Amount int }

// Account is an aggregate: it embeds aggregate.Root and has one On<Event>
// method per event type.
type Account struct {
	aggregate.Root
	Owner   string
	Balance int
}

func (a *Account) OnAccountOpened(e AccountOpened)   { a.Owner = e.Owner }
func (a *Account) OnMoneyDeposited(e MoneyDeposited) { a.Balance += e.Amount }

// Deposit is a command method: it checks the rules, then applies an event.
func (a *Account) Deposit(amount int) error {
	if a.Version() == 0 {
		return errors.New("no such account")
	}
	if amount <= 0 {
		return fmt.Errorf("deposit of %d: want a positive amount", amount)
	}
	return aggregate.Apply(a, MoneyDeposited{Amount: amount})
}

func openStore() *eventstore.Store {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[AccountOpened](reg, "account.opened")
	event.MustRegister[MoneyDeposited](reg, "account.money_deposited")
	db, err := sqlitedb.Open(":memory:", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store, err := eventstore.New(db, reg, eventstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(context.Background()); err != nil {
		log.Fatal(err)
	}
	return store
}

func ExampleRepository() {
	ctx := context.Background()
	store := openStore()
	accounts, err := aggregate.NewRepository[Account](store, "account", aggregate.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// An unknown ID loads as a new aggregate at version 0.
	acc, err := accounts.Load(ctx, "7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exists:", acc.Exists())
	if err := aggregate.Apply(acc, AccountOpened{Owner: "Ann"}); err != nil {
		log.Fatal(err)
	}
	if err := acc.Deposit(50); err != nil {
		log.Fatal(err)
	}
	recorded, err := accounts.Save(ctx, acc)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range recorded {
		fmt.Printf("stored %s version %d: %s\n", e.StreamID, e.Version, e.Type)
	}

	// Loading replays the stream through the same handlers.
	acc, err = accounts.Load(ctx, "7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s has %d at version %d\n", acc.Owner, acc.Balance, acc.Version())
	// Output:
	// exists: false
	// stored account-7 version 1: account.opened
	// stored account-7 version 2: account.money_deposited
	// Ann has 50 at version 2
}

func ExampleRepository_Save_conflict() {
	ctx := context.Background()
	accounts, err := aggregate.NewRepository[Account](openStore(), "account", aggregate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	acc, _ := accounts.Load(ctx, "7")
	aggregate.Apply(acc, AccountOpened{Owner: "Ann"})
	if _, err := accounts.Save(ctx, acc); err != nil {
		log.Fatal(err)
	}

	// Two writers load the same version; the second save fails.
	a, _ := accounts.Load(ctx, "7")
	b, _ := accounts.Load(ctx, "7")
	a.Deposit(10)
	b.Deposit(20)
	_, errA := accounts.Save(ctx, a)
	_, errB := accounts.Save(ctx, b)
	fmt.Println(errA)
	fmt.Println(errors.Is(errB, event.ErrVersionConflict))
	// Output:
	// <nil>
	// true
}

func ExampleApply() {
	// An aggregate made with new or a literal applies events too; loaded by
	// a Repository or made by New it also has an ID, which Save needs.
	acc := new(Account)
	err := aggregate.Apply(acc, AccountOpened{Owner: "Ann"}, &MoneyDeposited{Amount: 5})
	fmt.Println(acc.Owner, acc.Balance, acc.Version(), len(acc.Changes()), err)

	// A copy carries on from the original, which it leaves alone.
	cp := *acc
	aggregate.Apply(&cp, MoneyDeposited{Amount: 10})
	fmt.Println(acc.Balance, acc.Version(), cp.Balance, cp.Version())

	type AccountClosed struct{}
	err = aggregate.Apply(acc, AccountClosed{})
	fmt.Println(errors.Is(err, aggregate.ErrMissingHandler))
	// Output:
	// Ann 5 2 2 <nil>
	// 5 2 15 3
	// true
}

func ExampleNew() {
	acc, err := aggregate.New[Account]("7")
	if err != nil {
		log.Fatal(err)
	}
	err = aggregate.Apply(acc, AccountOpened{Owner: "Ann"})
	fmt.Println(acc.ID(), acc.Owner, acc.Version(), err)
	// Output:
	// 7 Ann 1 <nil>
}

func ExampleCheck() {
	type AccountClosed struct{}
	err := aggregate.Check[Account](AccountOpened{}, MoneyDeposited{}, AccountClosed{})
	fmt.Println(err)
	// Output:
	// aggregate: missing event handler: *aggregate_test.Account has no handler for events of type aggregate_test.AccountClosed: want a method like func (*aggregate_test.Account) OnAccountClosed(aggregate_test.AccountClosed) [error]
}

// Ledger is an Account with snapshots: it writes and reads its own state,
// the unexported field included.
type Ledger struct {
	aggregate.Root
	owner   string
	balance int
}

func (l *Ledger) OnAccountOpened(e AccountOpened)   { l.owner = e.Owner }
func (l *Ledger) OnMoneyDeposited(e MoneyDeposited) { l.balance += e.Amount }

type ledgerState struct {
	Owner   string `json:"owner"`
	Balance int    `json:"balance"`
}

// MarshalSnapshot makes Ledger an aggregate.Snapshotter.
func (l *Ledger) MarshalSnapshot() ([]byte, error) {
	return json.Marshal(ledgerState{l.owner, l.balance})
}

// UnmarshalSnapshot restores the state MarshalSnapshot wrote.
func (l *Ledger) UnmarshalSnapshot(data []byte) error {
	var s ledgerState
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	l.owner, l.balance = s.Owner, s.Balance
	return nil
}

func ExampleSnapshotter() {
	ctx := context.Background()
	store := openStore()
	ledgers, err := aggregate.NewRepository[Ledger](store, "ledger", aggregate.Options{
		SnapshotEvery:         100, // a snapshot each time the version passes a multiple of 100
		SnapshotSchemaVersion: 1,   // bump when MarshalSnapshot's output changes
	})
	if err != nil {
		log.Fatal(err)
	}
	l, _ := ledgers.Load(ctx, "7")
	aggregate.Apply(l, AccountOpened{Owner: "Ann"})
	for range 149 {
		aggregate.Apply(l, MoneyDeposited{Amount: 1})
	}
	if _, err := ledgers.Save(ctx, l); err != nil {
		log.Fatal(err)
	}
	snap, _, _ := store.LoadSnapshot(ctx, "ledger-7")
	fmt.Printf("snapshot at version %d: %s\n", snap.Version, snap.Data)

	l, _ = ledgers.Load(ctx, "7") // from the snapshot: no events to replay
	fmt.Println(l.owner, l.balance, l.Version())

	// Account is no Snapshotter: it cannot have snapshots.
	_, err = aggregate.NewRepository[Account](store, "account", aggregate.Options{SnapshotEvery: 100})
	fmt.Println(errors.Is(err, aggregate.ErrNotSnapshotter))
	// Output:
	// snapshot at version 150: {"owner":"Ann","balance":149}
	// Ann 149 150
	// true
}

// Wallet lists its handlers for direct calls: aggregate.Handlers.
type Wallet struct {
	aggregate.Root
	owner   string
	balance int
}

func (w *Wallet) OnAccountOpened(e AccountOpened) { w.owner = e.Owner }

func (w *Wallet) OnMoneyDeposited(e MoneyDeposited) error {
	if w.owner == "" {
		return errors.New("deposit to an unopened wallet")
	}
	w.balance += e.Amount
	return nil
}

// Handlers lists every On… method, with On or OnErr as its signature says.
func (*Wallet) Handlers() []aggregate.Handler[Wallet] {
	return []aggregate.Handler[Wallet]{
		aggregate.On((*Wallet).OnAccountOpened),
		aggregate.OnErr((*Wallet).OnMoneyDeposited),
	}
}

func ExampleHandlers() {
	ctx := context.Background()
	wallets, err := aggregate.NewRepository[Wallet](openStore(), "wallet", aggregate.Options{})
	if err != nil {
		log.Fatal(err) // a list that did not match the methods would fail here
	}
	w, _ := wallets.Load(ctx, "1")
	err = aggregate.Apply(w, MoneyDeposited{Amount: 5})
	fmt.Println(err)
	aggregate.Apply(w, AccountOpened{Owner: "Ann"}, MoneyDeposited{Amount: 5})
	if _, err := wallets.Save(ctx, w); err != nil {
		log.Fatal(err)
	}
	w, _ = wallets.Load(ctx, "1") // each event a direct call
	fmt.Println(w.owner, w.balance, w.Version())
	// Output:
	// aggregate: apply: (*aggregate_test.Wallet).OnMoneyDeposited: deposit to an unopened wallet
	// Ann 5 2
}
