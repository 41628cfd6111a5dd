package aggregate

import (
	"reflect"

	"github.com/cairnhq/cairn/event"
)

// Replay exposes the load path's dispatch to the benchmarks.
func Replay(r *Root, e *event.Event) error { return r.replay(e) }

// Direct reports whether T's handler for events like e is called without
// reflection: e's event type was registered with an event.Registry.
func Direct[T any](e any) bool {
	return typeFor(reflect.TypeFor[*T]()).handlerFor(e).fast != nil
}
