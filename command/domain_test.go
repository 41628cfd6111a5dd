package command_test

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// The test domain: a counter.

type Incremented struct{ By int }

type Counter struct {
	aggregate.Root
	N int
}

func (c *Counter) OnIncremented(e Incremented) { c.N += e.By }

var errNegative = errors.New("negative increment")

func (c *Counter) Increment(by int) error {
	if by < 0 {
		return errNegative
	}
	return aggregate.Apply(c, Incremented{By: by})
}

// Increment is a command.
type Increment struct {
	ID string
	By int
}

// Validate makes Increment a command.Validator.
func (c Increment) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID is empty"))
	}
	if c.By == 0 {
		errs = append(errs, errors.New("By is zero"))
	}
	return errors.Join(errs...)
}

func newRepo(t testing.TB, kind testdb.Kind) (*eventstore.Store, *aggregate.Repository[Counter]) {
	t.Helper()
	db := testdb.New(t, kind)
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Incremented](reg, "counter.incremented")
	store, err := eventstore.New(db.Gorm, reg, eventstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository[Counter](store, "counter",
		aggregate.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	return store, repo
}
