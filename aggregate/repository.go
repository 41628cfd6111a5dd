package aggregate

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"reflect"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/tracectx"
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

// SnapshotStreamReader is implemented by stores that keep snapshots and can
// read a stream's snapshot together with the events after it, in one query
// (*eventstore.Store does). A [Repository] whose snapshots are kept by its
// Store (Options.Snapshots nil) loads through it: one round trip for an
// aggregate with a recent snapshot instead of two. Such loads do not call
// the Store's ReadStream: a wrapper that embeds *eventstore.Store and
// changes ReadStream (to cache, to check access, to count) must change
// ReadStreamFromSnapshot the same way.
type SnapshotStreamReader interface {
	// ReadStreamFromSnapshot returns the stream's snapshot of the given
	// schema version and found true, if it has one, and the stream's events
	// after it (all of them when found is false). err is a failure to read
	// the snapshot; events then yields nothing.
	ReadStreamFromSnapshot(ctx context.Context, streamID string, schemaVersion int) (snap event.Snapshot, found bool, events iter.Seq2[event.Event, error], err error)
}

// registryOwner is implemented by stores that hand out their event registry
// (*eventstore.Store does): a Repository then checks that the aggregate's
// handlers take registered event types.
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
	// version past a multiple of SnapshotEvery, the repository stores the
	// state the aggregate writes with its [Snapshotter] methods, and loads
	// start from the latest snapshot instead of the first event. Zero (the
	// default) turns snapshots off. The aggregate type must implement
	// Snapshotter.
	SnapshotEvery int
	// SnapshotSchemaVersion is the version of the shape of the aggregate's
	// snapshot data (default 1). Bump it when MarshalSnapshot's output
	// changes: snapshots of any other schema version are ignored, and the
	// aggregate is replayed from its events.
	SnapshotSchemaVersion int
	// Snapshots stores the snapshots. Nil means the Store passed to
	// [NewRepository], which must then implement [SnapshotStore] when
	// SnapshotEvery is set.
	Snapshots SnapshotStore
	// Logger receives failures that no caller can take: a snapshot that
	// could not be saved after its events were, or a stored snapshot that
	// no longer decodes. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock that stamps snapshots; nil means time.Now.
	Now func() time.Time
	// TracerProvider makes the tracer of the repository's spans (see
	// "Tracing" in the package documentation); nil means
	// otel.GetTracerProvider() as NewRepository finds it.
	TracerProvider trace.TracerProvider
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
	// snapRead is the store's one-query snapshot read, when the store
	// keeps the snapshots and has one.
	snapRead SnapshotStreamReader
	tab      *table
	log      *slog.Logger
	tracer   trace.Tracer // trace.go
}

// NewRepository returns a repository for aggregates of type T kept in
// store. typeName is the aggregate type's persisted name (part of every
// stream ID by default): choose it like a table name and never derive it
// from the Go type's name, which may change.
//
// NewRepository finds T's handlers and checks them, so that a mistake is
// an error here rather than on the first event in production: T must embed
// [Root] by value ([ErrNoRoot]); every method of *T named On followed by an
// upper-case letter must be func(E) or func(E) error on a pointer receiver,
// with E a named event type, no two taking the same E; and when the store
// has a Registry() *event.Registry method (as *eventstore.Store has), each
// E must be registered with it ([ErrInvalidHandler]). With SnapshotEvery
// set, *T must implement [Snapshotter] ([ErrNotSnapshotter]).
func NewRepository[T any](store Store, typeName string, opts Options) (*Repository[T], error) {
	ptr := reflect.TypeFor[*T]()
	if store == nil {
		return nil, fmt.Errorf("aggregate: repository of %v: nil store", ptr)
	}
	if typeName == "" && opts.StreamID == nil {
		return nil, fmt.Errorf("aggregate: repository of %v: empty type name", ptr)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var reg *event.Registry
	if ro, ok := store.(registryOwner); ok {
		reg = ro.Registry()
	}
	tab, err := tableFor[T](reg)
	if err != nil {
		return nil, err
	}
	r := &Repository[T]{store: store, typeName: typeName, opts: opts, tab: tab, log: opts.Logger, tracer: tracectx.Tracer(opts.TracerProvider, tracerName)}
	if r.opts.SnapshotSchemaVersion == 0 {
		r.opts.SnapshotSchemaVersion = 1
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if opts.SnapshotEvery > 0 {
		if !ptr.Implements(reflect.TypeFor[Snapshotter]()) {
			return nil, fmt.Errorf("%w: SnapshotEvery is %d, but %v has no MarshalSnapshot and UnmarshalSnapshot methods to write and read its state",
				ErrNotSnapshotter, opts.SnapshotEvery, ptr)
		}
		r.snaps = opts.Snapshots
		if r.snaps == nil {
			s, ok := store.(SnapshotStore)
			if !ok {
				return nil, fmt.Errorf("aggregate: repository of %v: snapshots are on but the store %T does not implement SnapshotStore; set Options.Snapshots", ptr, store)
			}
			r.snaps = s
			r.snapRead, _ = store.(SnapshotStreamReader)
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
// through the events after it. Stored events go through the same handlers
// as [Apply], but are not recorded as changes.
//
// An unknown id is not an error: Load returns a new aggregate at version 0
// whose [Root.Exists] is false, so a creating command can apply its first
// events to it.
func (r *Repository[T]) Load(ctx context.Context, id string) (*T, error) {
	ctx, span := r.startSpan(ctx, spanLoad, id)
	agg, err := r.load(ctx, id)
	var root *Root
	if agg != nil {
		root = any(agg).(rooter).cairnRoot()
	}
	endSpan(span, root, err)
	return agg, err
}

// load is Load within its span.
func (r *Repository[T]) load(ctx context.Context, id string) (*T, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: load %v with an empty ID", ErrNoID, r.tab.ptr)
	}
	stream := r.StreamID(id)
	agg, root, events, err := r.fromSnapshot(ctx, stream, id)
	if err != nil {
		return nil, err
	}
	if agg == nil {
		agg, root = r.fresh(id)
	}
	if events == nil {
		events = r.store.ReadStream(ctx, stream, root.version+1, 0)
	}
	self := reflect.ValueOf(agg)
	for e, err := range events {
		if err != nil {
			return nil, streamError("load", stream, err)
		}
		if err := replay(root, agg, self, &e); err != nil {
			return nil, streamError("load", stream, err)
		}
	}
	return agg, nil
}

// fresh returns a new aggregate with the given ID, bound to the
// repository's dispatch table.
func (r *Repository[T]) fresh(id string) (*T, *Root) {
	agg := new(T)
	root := any(agg).(rooter).cairnRoot() // NewRepository checked T
	bind(agg, root, id, r.tab)
	return agg, root
}

// fromSnapshot returns the aggregate restored from the stream's latest
// usable snapshot, or nil when there is none. A snapshot that does not
// decode is logged and ignored: the aggregate is then replayed. events,
// when not nil, yields the stream's events after the returned aggregate's
// version (after none when the aggregate is nil): the store read them with
// the snapshot.
func (r *Repository[T]) fromSnapshot(ctx context.Context, stream, id string) (agg *T, root *Root, events iter.Seq2[event.Event, error], err error) {
	var (
		snap  event.Snapshot
		found bool
	)
	switch {
	case r.snaps == nil:
		return nil, nil, nil, nil
	case r.snapRead != nil:
		snap, found, events, err = r.snapRead.ReadStreamFromSnapshot(ctx, stream, r.opts.SnapshotSchemaVersion)
	default:
		snap, found, err = r.snaps.LoadSnapshot(ctx, stream)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("aggregate: load snapshot of %q: %w", stream, err)
	}
	if !found || snap.SchemaVersion != r.opts.SnapshotSchemaVersion || snap.Version <= 0 {
		if found {
			events = nil // they follow a snapshot that is not used
		}
		return nil, nil, events, nil
	}
	agg = new(T)
	if err := any(agg).(Snapshotter).UnmarshalSnapshot(snap.Data); err != nil {
		r.log.WarnContext(ctx, "ignoring undecodable snapshot",
			"stream_id", stream, "version", snap.Version, "schema_version", snap.SchemaVersion, "error", err)
		return nil, nil, nil, nil
	}
	root = any(agg).(rooter).cairnRoot()
	bind(agg, root, id, r.tab)
	root.version, root.committed = snap.Version, snap.Version
	return agg, root, events, nil
}

// Save appends the aggregate's uncommitted changes to its stream, expecting
// the stream at the version the aggregate was loaded at ([event.NoStream]
// for a new aggregate), and clears them. opts are passed to the append:
// metadata, causation and correlation IDs (see the command package's
// AppendOptions), event IDs. It returns the recorded events, or nil when
// there were no changes.
//
// When another writer saved the same aggregate since it was loaded, Save
// stores nothing and returns an error that matches
// [event.ErrVersionConflict]; the aggregate keeps its changes but is stale:
// load it again and rerun the command. An aggregate with changes but no ID
// (made with new(T) rather than by Load or [New]) is an error matching
// [ErrNoID].
//
// With snapshots on, a save that takes the version past a multiple of
// SnapshotEvery also stores a snapshot; a failure to do so is logged, not
// returned, since the events are stored.
func (r *Repository[T]) Save(ctx context.Context, agg *T, opts ...event.AppendOption) ([]event.Event, error) {
	if agg == nil {
		return nil, fmt.Errorf("%w: save a nil %v", ErrNoRoot, r.tab.ptr)
	}
	root := any(agg).(rooter).cairnRoot()
	if len(root.changes) == 0 {
		return nil, nil
	}
	if root.id == "" {
		return nil, fmt.Errorf("%w: save a %v that has changes but no ID: make it with Repository.Load or aggregate.New", ErrNoID, r.tab.ptr)
	}
	ctx, span := r.startSpan(ctx, spanSave, root.id)
	changes := len(root.changes)
	recs, err := r.save(ctx, agg, root, opts)
	endSpan(span, root, err, attrChanges.Int(changes))
	return recs, err
}

// save is Save within its span.
func (r *Repository[T]) save(ctx context.Context, agg *T, root *Root, opts []event.AppendOption) ([]event.Event, error) {
	stream := r.StreamID(root.id)
	before := root.committed
	recs, err := r.store.Append(ctx, stream, event.Exact(before), root.changes, opts...)
	if err != nil {
		return nil, streamError("save", stream, err)
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
	data, err := any(agg).(Snapshotter).MarshalSnapshot()
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
