package aggregate

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/cairnhq/cairn/event"
)

// Root is the part of an aggregate that Cairn manages: its ID, its version
// and the events applied since it was loaded. User aggregates embed it by
// value and declare one handler method per event type:
//
//	type Todo struct {
//		aggregate.Root
//		title string
//	}
//
//	func (t *Todo) OnTodoAdded(e TodoAdded) { t.title = e.Title }
//
// The zero Root is ready to use: an aggregate made with new(Todo), &Todo{},
// [New] or a [Repository] can apply events with [Apply]. An aggregate is not
// safe for concurrent use.
type Root struct {
	id        string
	version   int64 // including applied changes
	committed int64 // the version stored in the event store
	changes   []any
	self      any    // the aggregate (*T) the Root was bound to, nil if none
	tab       *table // the dispatch table of self's type
}

// rooter is implemented by every pointer to a struct that embeds Root. Its
// method is unexported, so only Root provides it.
type rooter interface{ cairnRoot() *Root }

// Pointer is the type constraint of a pointer to an aggregate of type T:
// *T, where T embeds [Root]. [Apply] and [New] take it, and so can generic
// code of the application's own, such as a test helper:
//
//	func given[T any, P aggregate.Pointer[T]](events ...any) P {
//		agg := P(new(T))
//		if err := aggregate.Apply(agg, events...); err != nil {
//			panic(err)
//		}
//		return agg
//	}
type Pointer[T any] interface {
	*T
	rooter
}

var rooterType = reflect.TypeFor[rooter]()

func (r *Root) cairnRoot() *Root { return r }

// ID returns the aggregate's ID: the one given to [Repository.Load] or
// [New], or "" for an aggregate made otherwise.
func (r *Root) ID() string { return r.id }

// Version returns the aggregate's version: the version of its stream when
// loaded, plus the number of events applied since.
func (r *Root) Version() int64 { return r.version }

// CommittedVersion returns the version of the aggregate's stream as last
// loaded or saved: 0 for an aggregate that is not stored yet.
func (r *Root) CommittedVersion() int64 { return r.committed }

// Exists reports whether the aggregate has events in the store, that is,
// whether it was loaded from a stream (or saved since). A [Repository.Load]
// of an unknown ID returns an aggregate that does not exist.
func (r *Root) Exists() bool { return r.committed > 0 }

// Changes returns the events applied since the aggregate was loaded or last
// saved, in order. The slice is a copy; the events are not.
func (r *Root) Changes() []any { return slices.Clone(r.changes) }

// Apply applies each event to agg, in order: it calls agg's handler for the
// event's type (the On… method whose parameter is that type; for an event
// of type *E, the one for E), increments the version and records the event
// as an uncommitted change that [Repository.Save] will store. Command
// methods call it on their receiver:
//
//	func (t *Todo) Complete() error {
//		if t.done {
//			return ErrAlreadyDone
//		}
//		return aggregate.Apply(t, TodoCompleted{})
//	}
//
// agg may have been made in any way: loaded by a [Repository], made by
// [New], new(T), &T{}, or copied from another aggregate. An aggregate not
// loaded by a Repository finds its handlers by reflection on its first
// Apply (a few microseconds), and then reports a handler with the wrong
// signature there; a Repository checks them when it is built. A copy
// carries on from the original's version and changes without changing
// the original.
//
// Handlers for all events are looked up before any is called, so a missing
// handler ([ErrMissingHandler]) changes nothing. A handler that returns an
// error stops Apply: the events before it stay applied and recorded, the
// failing event and those after it are neither, and the error is returned
// wrapped with the method's name.
func Apply[T any, P Pointer[T]](agg P, events ...any) error {
	if agg == nil {
		return fmt.Errorf("%w: apply to a nil %v", ErrNoRoot, reflect.TypeFor[P]())
	}
	r := agg.cairnRoot()
	if r == nil {
		return fmt.Errorf("%w: %v embeds a nil *aggregate.Root: embed aggregate.Root by value", ErrNoRoot, reflect.TypeFor[T]())
	}
	if r.self != any(agg) {
		if err := rebind[T](r, agg); err != nil {
			return err
		}
	}
	for _, e := range events { // find every handler before calling any
		if _, err := r.tab.lookup(e); err != nil {
			return err
		}
	}
	self := reflect.ValueOf(agg)
	for _, e := range events {
		if err := dispatch(r.tab, (*T)(agg), self, e); err != nil {
			return fmt.Errorf("aggregate: apply: %w", err)
		}
		r.version++
		r.changes = append(r.changes, e)
	}
	return nil
}

// rebind binds r to agg, the *T that embeds it, for an aggregate that was
// never bound (made with new(T) or &T{}) or that was copied from another.
// It keeps the dispatch table r has if it is T's, and otherwise resolves
// T's.
func rebind[T any](r *Root, agg *T) error {
	if r.self != nil {
		// A copy shares the original's changes: make the copy's appends
		// reallocate rather than write into the original's array.
		r.changes = slices.Clip(r.changes)
	}
	if r.tab == nil || r.tab.ptr != reflect.TypeFor[*T]() {
		tab, err := tableFor[T](nil)
		if err != nil {
			return err
		}
		r.tab = tab
	}
	r.self = agg
	return nil
}

// New returns a new aggregate of type T with the given ID, at version 0 and
// ready to apply events: the same as a [Repository.Load] of an ID that has
// no stream, without the store. It checks T's handlers as [NewRepository]
// does, except for their registration.
func New[T any, P Pointer[T]](id string) (P, error) {
	tab, err := tableFor[T](nil)
	if err != nil {
		return nil, err
	}
	agg := P(new(T))
	bind(agg, agg.cairnRoot(), id, tab)
	return agg, nil
}

// bind sets up r, the Root embedded in agg, as the Root of a new aggregate
// with the given ID and dispatch table.
func bind(agg any, r *Root, id string, tab *table) {
	*r = Root{id: id, self: agg, tab: tab}
}

// replay applies a stored event to agg, whose Root is r, without recording
// it; self is agg as a reflect.Value.
func replay[T any](r *Root, agg *T, self reflect.Value, e *event.Event) error {
	if e.Version != r.version+1 {
		return fmt.Errorf("version %d follows version %d", e.Version, r.version)
	}
	if err := dispatch(r.tab, agg, self, e.Data); err != nil {
		return fmt.Errorf("version %d (%s): %w", e.Version, e.Type, err)
	}
	r.version = e.Version
	r.committed = e.Version
	return nil
}

// markSaved records that the changes were stored and the stream is now at
// version v.
func (r *Root) markSaved(v int64) {
	r.changes = nil // the store may keep the slice it was given
	r.version = v
	r.committed = v
}
