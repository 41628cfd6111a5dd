package aggregate

import (
	"reflect"

	"github.com/cairnhq/cairn/event"
)

// Replay exposes the load path's dispatch to the benchmarks: it applies a
// stored event to agg, which must be bound (by New or Apply).
func Replay[T any, P Pointer[T]](agg P, e *event.Event) error {
	return agg.cairnRoot().replay(reflect.ValueOf(agg), e)
}
