package aggregate

import (
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	"github.com/cairnhq/cairn/event"
)

// Root is the part of an aggregate that Cairn manages: its ID, its version
// and the events applied since it was loaded. User aggregates embed it by
// value and declare one handler per event type:
//
//	type Todo struct {
//		aggregate.Root
//		Title string
//	}
//
//	func (t *Todo) OnTodoAdded(e TodoAdded) { t.Title = e.Title }
//
// Aggregates are created by [New] or by a [Repository], which bind the Root
// to the aggregate that embeds it; a Root that was not bound (a zero
// aggregate made with &Todo{}) or was copied with its aggregate refuses to
// apply events with [ErrNoRoot]. An aggregate is not safe for concurrent
// use.
type Root struct {
	id        string
	version   int64 // including applied changes
	committed int64 // the version stored in the event store
	changes   []any
	self      reflect.Value  // the aggregate embedding this Root (a pointer)
	ptr       unsafe.Pointer // the same pointer, for dispatch.Func handlers
	owner     rooter
	typ       *aggType
}

// rooter is implemented by every pointer to a struct that embeds Root.
type rooter interface{ cairnRoot() *Root }

var rooterType = reflect.TypeFor[rooter]()

func (r *Root) cairnRoot() *Root { return r }

// ID returns the aggregate's ID.
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

// Apply applies each event to the aggregate, in order: it calls the
// aggregate's On<EventType> method (for an event of type *E, the method for
// E), increments the version and records the event as an uncommitted change
// that [Repository.Save] will store.
//
// Handlers for all events are looked up before any is called, so a missing
// or invalid handler ([ErrMissingHandler], [ErrInvalidHandler]) changes
// nothing. A handler that returns an error stops Apply: the events before it
// stay applied and recorded, the failing event and those after it are
// neither, and the error is returned wrapped with the method's name.
func (r *Root) Apply(events ...any) error {
	if err := r.check(); err != nil {
		return err
	}
	var buf [8]*handler
	hs := buf[:0]
	for _, e := range events {
		h, err := r.handler(e)
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	for i, e := range events {
		if err := hs[i].call(r, e); err != nil {
			return fmt.Errorf("aggregate: apply: %w", err)
		}
		r.version++
		r.changes = append(r.changes, e)
	}
	return nil
}

// replay applies a stored event without recording it.
func (r *Root) replay(e *event.Event) error {
	if e.Version != r.version+1 {
		return fmt.Errorf("version %d follows version %d", e.Version, r.version)
	}
	h, err := r.handler(e.Data)
	if err != nil {
		return fmt.Errorf("version %d (%s): %w", e.Version, e.Type, err)
	}
	if err := h.call(r, e.Data); err != nil {
		return fmt.Errorf("version %d (%s): %w", e.Version, e.Type, err)
	}
	r.version = e.Version
	r.committed = e.Version
	return nil
}

func (r *Root) handler(e any) (*handler, error) {
	if e == nil {
		return nil, fmt.Errorf("aggregate: apply nil event to %v", r.typ.ptr)
	}
	h := r.typ.handlerFor(e)
	if h.err != nil {
		return nil, h.err
	}
	return h, nil
}

// check reports a Root that was not bound by New or a Repository, or that
// was copied since.
func (r *Root) check() error {
	if r == nil {
		return fmt.Errorf("%w: nil *aggregate.Root", ErrNoRoot)
	}
	if r.typ == nil {
		return fmt.Errorf("%w: the aggregate was not created by aggregate.New or a Repository", ErrNoRoot)
	}
	if r.owner.cairnRoot() != r {
		return fmt.Errorf("%w: this %v was copied from another; use the original pointer", ErrNoRoot, r.typ.ptr.Elem())
	}
	return nil
}

// markSaved records that the changes were stored and the stream is now at
// version v.
func (r *Root) markSaved(v int64) {
	r.changes = nil // the store may keep the slice it was given
	r.version = v
	r.committed = v
}

// New returns a new aggregate of type T with the given ID, at version 0 and
// with its [Root] bound, ready to apply events. T must be a struct type that
// embeds Root by value (see [Check]).
func New[T any](id string) (*T, error) {
	p := new(T)
	if _, err := bind(p, id); err != nil {
		return nil, err
	}
	return p, nil
}

// bind sets up the Root embedded in p.
func bind[T any](p *T, id string) (*Root, error) {
	rt, ok := any(p).(rooter)
	if !ok {
		return nil, checkType(reflect.TypeFor[*T]())
	}
	r := rt.cairnRoot()
	if r == nil {
		return nil, fmt.Errorf("%w: %v embeds a nil *aggregate.Root: embed aggregate.Root by value", ErrNoRoot, reflect.TypeFor[T]())
	}
	*r = Root{id: id, self: reflect.ValueOf(p), ptr: unsafe.Pointer(p), owner: rt, typ: typeFor(reflect.TypeFor[*T]())}
	return r, nil
}

// rootOf returns the bound Root of p.
func rootOf[T any](p *T) (*Root, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil %v", ErrNoRoot, reflect.TypeFor[*T]())
	}
	rt, ok := any(p).(rooter)
	if !ok {
		return nil, checkType(reflect.TypeFor[*T]())
	}
	r := rt.cairnRoot()
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%v: %w", reflect.TypeFor[T](), err)
	}
	return r, nil
}
