package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// payload is the data of every benchmark event: about 100 bytes of JSON.
type payload struct {
	ID    string
	Title string
	N     int
}

// payloadType is the persisted type name of payload, in Cairn and in the
// floor's table alike.
const payloadType = "bench.happened"

// errConflict reports an append that found its stream at another version
// than it expected (Cairn's version conflict, the floor's unique violation).
var errConflict = errors.New("version conflict")

// subject is what a workload drives: Cairn's store or the floor. Both sides
// run the same workload code through it, so they do the same work.
type subject interface {
	// append stores evs at the end of stream, whose version must be
	// expected (0: the stream is new), atomically and durably. A stream at
	// another version is an error matching errConflict.
	append(ctx context.Context, stream string, expected int64, evs []payload) error
	// appendNext reads the stream's version and appends p after it. A
	// concurrent writer that got there first makes it fail with an error
	// matching errConflict.
	appendNext(ctx context.Context, stream string, p payload) error
	// readStream passes every event of stream, in version order, to fn
	// and returns how many there were.
	readStream(ctx context.Context, stream string, fn func(*payload)) (int, error)
	// readAll passes every stored event, in global order, to fn and
	// returns how many there were.
	readAll(ctx context.Context, fn func(*payload)) (int, error)
	// versions returns the versions stored for every stream, in global
	// order. It is for checks, not for measuring.
	versions(ctx context.Context) (map[string][]int64, error)
}

// streamName names the k-th stream of a workload.
func streamName(workload string, k int) string {
	return fmt.Sprintf("%s-stream-%04d", workload, k)
}

// payloads returns n distinct payloads, numbered from first.
func payloads(first, n int) []payload {
	title := strings.Repeat("benchmark event title ", 2)
	out := make([]payload, n)
	for i := range out {
		out[i] = payload{
			ID:    fmt.Sprintf("%08x-0000-4000-8000-%012x", first+i, first+i),
			Title: title,
			N:     first + i,
		}
	}
	return out
}

// sink consumes read payloads so that the reads cannot be optimised away;
// its sum is checked by nobody.
type sink struct{ sum int }

func (s *sink) take(p *payload) { s.sum += p.N + len(p.ID) + len(p.Title) }
