package aggregate

import (
	"reflect"

	"github.com/cairnhq/cairn/event"
)

// Replay exposes the load path's dispatch to the tests and benchmarks: it
// applies a stored event to agg without recording it, as a load does.
func Replay[T any, P Pointer[T]](agg P, e *event.Event) error {
	r := agg.cairnRoot()
	if r.self != any(agg) {
		if err := rebind[T](r, agg); err != nil {
			return err
		}
	}
	return replay(r, (*T)(agg), reflect.ValueOf(agg), e)
}
