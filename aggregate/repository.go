package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/cairnhq/cairn/event"
)

// Store is what a [Repository] needs of an event store: appending to a
// stream and reading it. *eventstore.Store implements it.
type Store interface {
	event.Appender
	event.StreamReader
}

// SnapshotStore keeps the latest snapshot of each stream. *eventstore.Store
// implements it.
type SnapshotStore interface {
	// SaveSnapshot stores snap.
	SaveSnapshot(ctx context.Context, snap event.Snapshot) error
	// LoadSnapshot returns the latest snapshot of the stream, and false
	// when there is none.
	LoadSnapshot(ctx context.Context, streamID string) (event.Snapshot, bool, error)
}

// registryOwner is implemented by stores that hand out their event registry
// (*eventstore.Store does); its codec then encodes snapshots.
type registryOwner interface{ Registry() *event.Registry }

// Options configures a [Repository]. The zero value works: stream IDs are
// "<type name>-<id>" and snapshots are off.
type Options struct {
	// StreamID maps an aggregate ID to the ID of its stream. Nil means
	// the type name given to [NewRepository], a hyphen and the ID: a Todo
	// repository named "todo" keeps aggregate "42" in stream "todo-42".
	// The function must be deterministic and map different IDs to
	// different streams.
	StreamID func(id string) string

	// SnapshotEvery turns snapshots on: when a save takes the aggregate's
	// version past a multiple of SnapshotEvery, the repository stores its
	// state, and loads start from the latest snapshot instead of the first
	// event. Zero (the default) turns snapshots off.
	SnapshotEvery int
	// SnapshotSchemaVersion is the version of the shape of the aggregate's
	// encoded state (default 1). Bump it when the aggregate's fields
	// change: snapshots of any other schema version are ignored, and the
	// aggregate is replayed from its events.
	SnapshotSchemaVersion int
	// Snapshots stores the snapshots. Nil means the Store passed to
	// [NewRepository], which must then implement [SnapshotStore] when
	// SnapshotEvery is set.
	Snapshots SnapshotStore
	// Codec encodes the aggregate's state in snapshots. Nil means the
	// codec of the store's event registry when the store has a
	// Registry() *event.Registry method (as *eventstore.Store does), else
	// [event.JSONCodec]. With JSON, only exported fields (and what a
	// MarshalJSON method writes) are kept.
	Codec event.Codec
	// Logger receives failures that no caller can take: a snapshot that
	// could not be saved after its events were, or a stored snapshot that
	// no longer decodes. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock that stamps snapshots; nil means time.Now.
	Now func() time.Time
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.SnapshotEvery < 0 {
		errs = append(errs, fmt.Errorf("aggregate: SnapshotEvery is %d, want 0 (off) or more", o.SnapshotEvery))
	}
	if o.SnapshotSchemaVersion < 0 {
		errs = append(errs, fmt.Errorf("aggregate: SnapshotSchemaVersion is %d, want 1 or more (0 means 1)", o.SnapshotSchemaVersion))
	}
	return errors.Join(errs...)
}

// Repository loads aggregates of type T from their streams and saves their
// new events. T is the aggregate's struct type (Todo, not *Todo), which
// embeds [Root]. A Repository is safe for concurrent use; the aggregates it
// returns are not.
type Repository[T any] struct {
	store    Store
	typeName string
	opts     Options
	snaps    SnapshotStore
	codec    event.Codec
	log      *slog.Logger
}

// NewRepository returns a repository for aggregates of type T kept in
// store. typeName is the aggregate type's persisted name (part of every
// stream ID by default): choose it like a table name and never derive it
// from the Go type's name, which may change. NewRepository checks that T
// embeds Root and that its On<EventType> methods are valid handlers.
func NewRepository[T any](store Store, typeName string, opts Options) (*Repository[T], error) {
	if store == nil {
		return nil, errors.New("aggregate: new repository: nil store")
	}
	if typeName == "" && opts.StreamID == nil {
		return nil, fmt.Errorf("aggregate: new repository for %v: empty type name", reflect.TypeFor[T]())
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := Check[T](); err != nil {
		return nil, fmt.Errorf("aggregate: new repository: %w", err)
	}
	r := &Repository[T]{store: store, typeName: typeName, opts: opts, codec: opts.Codec, log: opts.Logger}
	if r.opts.SnapshotSchemaVersion == 0 {
		r.opts.SnapshotSchemaVersion = 1
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.codec == nil {
		if ro, ok := store.(registryOwner); ok && ro.Registry() != nil {
			r.codec = ro.Registry().Codec()
		} else {
			r.codec = event.JSONCodec{}
		}
	}
	if opts.SnapshotEvery > 0 {
		r.snaps = opts.Snapshots
		if r.snaps == nil {
			s, ok := store.(SnapshotStore)
			if !ok {
				return nil, fmt.Errorf("aggregate: new repository for %q: snapshots are on but the store %T does not implement SnapshotStore; set Options.Snapshots", typeName, store)
			}
			r.snaps = s
		}
	}
	r.log = r.log.With("aggregate_type", typeName)
	return r, nil
}

// StreamID returns the ID of the stream that holds aggregate id.
func (r *Repository[T]) StreamID(id string) string {
	if r.opts.StreamID != nil {
		return r.opts.StreamID(id)
	}
	return r.typeName + "-" + id
}

// Load returns aggregate id, rebuilt from its stream: from the latest
// snapshot of the repository's schema version when snapshots are on, then
// through the events after it. Stored events go through the same
// On<EventType> handlers as [Root.Apply], but are not recorded as changes.
//
// An unknown id is not an error: Load returns a new aggregate at version 0
// whose [Root.Exists] is false, so a creating command can apply its first
// events to it.
func (r *Repository[T]) Load(ctx context.Context, id string) (*T, error) {
	if id == "" {
		return nil, fmt.Errorf("aggregate: load %v: empty id", reflect.TypeFor[T]())
	}
	stream := r.StreamID(id)
	agg, root, err := r.fromSnapshot(ctx, stream, id)
	if err != nil {
		return nil, err
	}
	if agg == nil {
		agg = new(T)
		if root, err = bind(agg, id); err != nil {
			return nil, err
		}
	}
	for e, err := range r.store.ReadStream(ctx, stream, root.version+1, 0) {
		if err != nil {
			return nil, fmt.Errorf("aggregate: load %q: %w", stream, err)
		}
		if err := root.replay(&e); err != nil {
			return nil, fmt.Errorf("aggregate: load %q: %w", stream, err)
		}
	}
	return agg, nil
}

// fromSnapshot returns the aggregate decoded from the stream's latest
// usable snapshot, or nil when there is none.
func (r *Repository[T]) fromSnapshot(ctx context.Context, stream, id string) (*T, *Root, error) {
	if r.snaps == nil {
		return nil, nil, nil
	}
	snap, ok, err := r.snaps.LoadSnapshot(ctx, stream)
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate: load snapshot of %q: %w", stream, err)
	}
	if !ok || snap.SchemaVersion != r.opts.SnapshotSchemaVersion || snap.Version <= 0 {
		return nil, nil, nil
	}
	agg := new(T)
	if err := r.codec.Unmarshal(snap.Data, agg); err != nil {
		r.log.WarnContext(ctx, "ignoring undecodable snapshot",
			"stream_id", stream, "version", snap.Version, "schema_version", snap.SchemaVersion, "error", err)
		return nil, nil, nil
	}
	root, err := bind(agg, id)
	if err != nil {
		return nil, nil, err
	}
	root.version, root.committed = snap.Version, snap.Version
	return agg, root, nil
}

// Save appends the aggregate's uncommitted changes to its stream, expecting
// the stream at the version the aggregate was loaded at ([event.NoStream]
// for a new aggregate), and clears them. opts are passed to the append:
// metadata, causation and correlation IDs (see the command package's
// AppendOptions), event IDs.
//
// When another writer saved the same aggregate since it was loaded, Save
// stores nothing and returns an error that matches
// [event.ErrVersionConflict]; the aggregate keeps its changes but is stale:
// load it again and rerun the command. Save returns the recorded events, or
// nil when there were no changes.
//
// With snapshots on, a save that takes the version past a multiple of
// SnapshotEvery also stores a snapshot; a failure to do so is logged, not
// returned, since the events are stored.
func (r *Repository[T]) Save(ctx context.Context, agg *T, opts ...event.AppendOption) ([]event.Event, error) {
	root, err := rootOf(agg)
	if err != nil {
		return nil, fmt.Errorf("aggregate: save: %w", err)
	}
	if len(root.changes) == 0 {
		return nil, nil
	}
	stream := r.StreamID(root.id)
	before := root.committed
	recs, err := r.store.Append(ctx, stream, event.Exact(before), root.changes, opts...)
	if err != nil {
		return nil, fmt.Errorf("aggregate: save %q: %w", stream, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("aggregate: save %q: the store recorded no events", stream)
	}
	root.markSaved(recs[len(recs)-1].Version)
	if n := int64(r.opts.SnapshotEvery); n > 0 && root.committed/n > before/n {
		r.saveSnapshot(ctx, stream, agg, root)
	}
	return recs, nil
}

func (r *Repository[T]) saveSnapshot(ctx context.Context, stream string, agg *T, root *Root) {
	data, err := r.codec.Marshal(agg)
	if err == nil {
		err = r.snaps.SaveSnapshot(ctx, event.Snapshot{
			StreamID:      stream,
			Version:       root.committed,
			SchemaVersion: r.opts.SnapshotSchemaVersion,
			Data:          data,
			RecordedAt:    r.opts.Now().UTC(),
		})
	}
	if err != nil {
		r.log.ErrorContext(ctx, "saving snapshot", "stream_id", stream, "version", root.committed, "error", err)
	}
}
