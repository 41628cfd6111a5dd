package processing

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/cairnhq/cairn/event"
)

// Store is what a processor needs of an event store: batched
// subscriptions, and the positions and leases of processors.
// *eventstore.Store implements it.
type Store interface {
	// SubscribeBatches yields batches of the events after a position,
	// first those stored and then new ones, until ctx ends.
	SubscribeBatches(ctx context.Context, after int64, limit int, types ...string) iter.Seq2[event.Batch, error]
	Positions
}

// Positions keeps the positions of processors in the store's database, one
// row per processor name: the position of the last event the processor
// has fully handled, an epoch, and a lease (an owner and an expiry timed by
// the database's clock, never by the clocks of the processes that share
// it). Every position update is a compare-and-set, in one statement, on
// the epoch the processor read when it started and the position it moves
// from, so an owner that has been replaced — by a reset, a lease takeover,
// or another instance that got there first — can never move the position
// again. *eventstore.Store implements it.
type Positions interface {
	// Migrate creates the store's tables, the positions table among
	// them, if they do not exist.
	Migrate(ctx context.Context) error
	// LoadPosition returns the processor's saved position and epoch,
	// creating its row if it has none.
	LoadPosition(ctx context.Context, name string) (position, epoch int64, err error)
	// SavePosition moves the processor's position from from to to if its
	// row still has epoch and from, and reports whether it did.
	SavePosition(ctx context.Context, name string, epoch, from, to int64) (saved bool, err error)
	// ResetPosition moves the processor's position back to 0 and bumps
	// its epoch.
	ResetPosition(ctx context.Context, name string) error
	// AcquireLease takes the processor's lease for owner, for d, if no
	// other owner holds it, bumping the epoch; it returns the new epoch
	// and the saved position, and ok false when another owner holds the
	// lease. The processor's row must exist (see LoadPosition).
	AcquireLease(ctx context.Context, name, owner string, d time.Duration) (epoch, position int64, ok bool, err error)
	// RenewLease extends the lease owner holds with epoch for d from now,
	// and reports whether it did (false: the lease is lost).
	RenewLease(ctx context.Context, name, owner string, epoch int64, d time.Duration) (renewed bool, err error)
	// ReleaseLease gives up the lease owner holds with epoch, if it still
	// holds it.
	ReleaseLease(ctx context.Context, name, owner string, epoch int64) error
	// LeaseHolder returns the owner of the processor's lease ("" when
	// none holds it or it has expired) and its saved position.
	LeaseHolder(ctx context.Context, name string) (owner string, position int64, err error)
}

// SaveFunc saves a processor's position from from to to if its row still
// has epoch and from, and reports whether it did: [Store.SavePosition], or
// the same in the caller's transaction (a projector's).
type SaveFunc func(ctx context.Context, name string, epoch, from, to int64) (saved bool, err error)

// Checkpoint saves the position of the processor that hands it out with a
// batch. It is valid for that batch only, and moves the position from where
// it was before the batch: a handler saves once per batch (a save in a
// transaction that rolls back does not count).
type Checkpoint struct {
	store Positions
	name  string
	epoch int64
	from  int64
	// parked are the batch's events parked behind parked events of
	// their streams, which must commit with the position that passes
	// them, through parker (see parking.go).
	parked []event.Parked
	parker Parking
}

// Save sets the processor's position through the store, outside any
// transaction. It fails with [ErrFenced] when the saved position is no
// longer the one the batch started from, or the processor was reset or
// taken over since its Run started.
func (c Checkpoint) Save(ctx context.Context, position int64) error {
	if ok, err := c.saveParked(ctx, position); ok {
		return err
	}
	return c.save(ctx, position, c.store.SavePosition)
}

// SaveWith sets the processor's position through save, which writes it in
// the caller's transaction when the position must commit together with
// other writes (a projector's). It fails as [Checkpoint.Save] does; on
// [ErrFenced] the caller must roll back what it wrote in the transaction.
// When the processor parks events of the batch ([Options.Park]) up to
// position, SaveWith fails with [ErrInvalid]: such a handler saves with
// [Checkpoint.SaveWithParking].
func (c Checkpoint) SaveWith(ctx context.Context, position int64, save SaveFunc) error {
	if len(c.parkedThrough(position)) > 0 {
		return fmt.Errorf("save position %d: %w: the batch parks events: save with SaveWithParking", position, ErrInvalid)
	}
	return c.save(ctx, position, save)
}

func (c Checkpoint) save(ctx context.Context, position int64, save SaveFunc) error {
	saved, err := save(ctx, c.name, c.epoch, c.from, position)
	if err != nil {
		return err
	}
	if !saved {
		return fmt.Errorf("save position %d: %w", position, ErrFenced)
	}
	return nil
}
