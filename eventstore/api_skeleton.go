package eventstore

// Temporary skeleton: the real implementation replaces this file.

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

var errTODO = errors.New("eventstore: not implemented yet")

// ErrInvalidArgument reports bad input to a store call; nothing was written.
var ErrInvalidArgument = errors.New("eventstore: invalid argument")

// Options configures a Store. The zero value works.
type Options struct {
	TablePrefix  string // default "cairn_"
	Logger       *slog.Logger
	Now          func() time.Time
	NewID        func() uuid.UUID
	PollInterval time.Duration // default 500ms
	PageSize     int           // default 1000
}

// Store is the gorm-backed event store.
type Store struct{}

func New(db *gorm.DB, reg *event.Registry, opts Options) (*Store, error) { return nil, errTODO }
func (s *Store) Migrate(ctx context.Context) error                         { return errTODO }
func (s *Store) Registry() *event.Registry                                 { return nil }
func (s *Store) DB() *gorm.DB                                              { return nil }
func (s *Store) Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events []any, opts ...event.AppendOption) ([]event.Event, error) {
	return nil, errTODO
}
func (s *Store) ReadEvent(ctx context.Context, streamID string, version int64) (event.Event, error) {
	return event.Event{}, errTODO
}
func (s *Store) ReadStream(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[event.Event, error] {
	return nil
}
func (s *Store) ReadStreamBackward(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[event.Event, error] {
	return nil
}
func (s *Store) ReadAll(ctx context.Context, after int64, limit int, types ...string) iter.Seq2[event.Event, error] {
	return nil
}
func (s *Store) Subscribe(ctx context.Context, after int64, types ...string) iter.Seq2[event.Event, error] {
	return nil
}
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) { return 0, errTODO }
func (s *Store) Head(ctx context.Context) (int64, error)                         { return 0, errTODO }
func (s *Store) DeleteStream(ctx context.Context, streamID string, expected event.ExpectedVersion) error {
	return errTODO
}
func (s *Store) SaveSnapshot(ctx context.Context, snap event.Snapshot) error { return errTODO }
func (s *Store) LoadSnapshot(ctx context.Context, streamID string) (event.Snapshot, bool, error) {
	return event.Snapshot{}, false, errTODO
}
func OpenPostgres(dsn string) (*gorm.DB, error) { return nil, errTODO }
