package aggregate

import "github.com/cairnhq/cairn/event"

// Replay exposes the load path's dispatch to the benchmarks.
func Replay(r *Root, e event.Event) error { return r.replay(e) }
