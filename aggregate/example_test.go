package aggregate_test

import (
	"context"
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
	return a.Apply(MoneyDeposited{Amount: amount})
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
	if err := acc.Apply(AccountOpened{Owner: "Ann"}); err != nil {
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
	acc.Apply(AccountOpened{Owner: "Ann"})
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

func ExampleNew() {
	acc, err := aggregate.New[Account]("7")
	if err != nil {
		log.Fatal(err)
	}
	err = acc.Apply(AccountOpened{Owner: "Ann"}, &MoneyDeposited{Amount: 5})
	fmt.Println(acc.Owner, acc.Balance, acc.Version(), len(acc.Changes()), err)

	type Closed struct{}
	err = acc.Apply(Closed{})
	fmt.Println(errors.Is(err, aggregate.ErrMissingHandler))
	// Output:
	// Ann 5 2 2 <nil>
	// true
}

func ExampleCheck() {
	type AccountClosed struct{}
	err := aggregate.Check[Account](AccountOpened{}, MoneyDeposited{}, AccountClosed{})
	fmt.Println(err)
	// Output:
	// aggregate: missing event handler: *aggregate_test.Account has no method OnAccountClosed for event aggregate_test.AccountClosed: want func (*aggregate_test.Account) OnAccountClosed(aggregate_test.AccountClosed) [error] (exported, pointer receiver)
}

func ExampleOptions_snapshots() {
	ctx := context.Background()
	store := openStore()
	accounts, err := aggregate.NewRepository[Account](store, "account", aggregate.Options{
		SnapshotEvery:         100, // a snapshot each time the version passes a multiple of 100
		SnapshotSchemaVersion: 1,   // bump when Account's fields change
	})
	if err != nil {
		log.Fatal(err)
	}
	acc, _ := accounts.Load(ctx, "7")
	acc.Apply(AccountOpened{Owner: "Ann"})
	for range 149 {
		acc.Deposit(1)
	}
	if _, err := accounts.Save(ctx, acc); err != nil {
		log.Fatal(err)
	}
	snap, _, _ := store.LoadSnapshot(ctx, "account-7")
	fmt.Println("snapshot at version", snap.Version)

	acc, _ = accounts.Load(ctx, "7") // decodes the snapshot: no events to replay
	fmt.Println(acc.Owner, acc.Balance, acc.Version())
	// Output:
	// snapshot at version 150
	// Ann 149 150
}
