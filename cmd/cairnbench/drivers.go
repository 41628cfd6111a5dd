package main

// The drivers of the store workloads: each runs on a subject, Cairn's
// store or the floor, and measures the same work on both.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// timed runs fn, which does n events' worth of work, and returns the rate.
func timed(n int, fn func() error) (sample, error) {
	runtime.GC()
	start := time.Now()
	if err := fn(); err != nil {
		return sample{}, err
	}
	return sample{value: float64(n) / time.Since(start).Seconds()}, nil
}

// appendOne (W1): one writer appends one event at a time, round-robin over streams,
// with exact expected versions.
func appendOne(ctx context.Context, s subject, sz sizes) (sample, error) {
	evs := payloads(0, sz.w1Appends)
	versions := make([]int64, sz.w1Streams)
	return timed(sz.w1Appends, func() error {
		for i := range evs {
			k := i % sz.w1Streams
			if err := s.append(ctx, streamName("w1", k), versions[k], evs[i:i+1]); err != nil {
				return err
			}
			versions[k]++
		}
		return nil
	})
}

// appendBatches (W2): one writer appends batches, round-robin over streams, each batch
// following the stream's previous one.
func appendBatches(ctx context.Context, s subject, sz sizes) (sample, error) {
	evs := payloads(0, sz.w2Batches*sz.w2BatchSize)
	versions := make([]int64, sz.w2Streams)
	return timed(len(evs), func() error {
		for b := range sz.w2Batches {
			k := b % sz.w2Streams
			batch := evs[b*sz.w2BatchSize : (b+1)*sz.w2BatchSize]
			if err := s.append(ctx, streamName("w2", k), versions[k], batch); err != nil {
				return err
			}
			versions[k] += int64(len(batch))
		}
		return nil
	})
}

// appendConcurrent (W3): concurrent writers append one event at a time, each to streams of
// its own, with exact expected versions.
func appendConcurrent(ctx context.Context, s subject, sz sizes) (sample, error) {
	evs := make([][]payload, sz.w3Writers)
	for w := range evs {
		evs[w] = payloads(w*sz.w3Appends, sz.w3Appends)
	}
	return timed(sz.w3Writers*sz.w3Appends, func() error {
		g, ctx := errgroup.WithContext(ctx)
		for w := range sz.w3Writers {
			g.Go(func() error {
				versions := make([]int64, sz.w3Streams)
				for i := range evs[w] {
					k := i % sz.w3Streams
					if err := s.append(ctx, streamName(fmt.Sprintf("w3-%d", w), k), versions[k], evs[w][i:i+1]); err != nil {
						return err
					}
					versions[k]++
				}
				return nil
			})
		}
		return g.Wait()
	})
}

// maxAttempts bounds the attempts of one W4 append: more means the
// subject is not making progress.
const maxAttempts = 10_000

// extraConflictRate is the key of W4's conflict rate, in percent of the
// append attempts.
const extraConflictRate = "conflict_rate"

// appendContended (W4): concurrent writers append to the same few streams, each append
// reading the stream's version first and retrying on a conflict. It
// counts the conflicts and checks that the streams' versions are 1..N.
func appendContended(ctx context.Context, s subject, sz sizes) (sample, error) {
	total := sz.w4Writers * sz.w4Appends
	evs := payloads(0, total)
	var conflicts atomic.Int64
	smp, err := timed(total, func() error {
		g, ctx := errgroup.WithContext(ctx)
		for w := range sz.w4Writers {
			g.Go(func() error {
				for i := range sz.w4Appends {
					stream := streamName("w4", (w+i)%sz.w4Streams)
					n, err := appendRetrying(ctx, s, stream, evs[w*sz.w4Appends+i])
					conflicts.Add(int64(n))
					if err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	})
	if err != nil {
		return sample{}, err
	}
	smp.conflicts = int(conflicts.Load())
	// The conflict rate: the share of append attempts that met a conflict.
	smp.extras = map[string]float64{extraConflictRate: 100 * float64(smp.conflicts) / float64(total+smp.conflicts)}
	vs, err := s.versions(ctx)
	if err != nil {
		return sample{}, fmt.Errorf("check versions: %w", err)
	}
	smp.check = checkVersions(vs, total)
	return smp, nil
}

// appendRetrying appends p after the stream's current version, retrying
// on conflicts, and returns how many conflicts it met.
func appendRetrying(ctx context.Context, s subject, stream string, p payload) (conflicts int, err error) {
	for range maxAttempts {
		err := s.appendNext(ctx, stream, p)
		if !errors.Is(err, errConflict) {
			return conflicts, err
		}
		conflicts++
	}
	return conflicts, fmt.Errorf("append to %s: %d conflicts in a row", stream, conflicts)
}

// checkVersions reports "ok" when every stream's versions are 1..N with no
// duplicates and there are total events in all, or else what is wrong.
func checkVersions(vs map[string][]int64, total int) string {
	var problems []string
	n := 0
	for _, versions := range vs {
		n += len(versions)
		sorted := slices.Sorted(slices.Values(versions))
		if len(slices.Compact(sorted)) != len(versions) {
			problems = append(problems, "DUPLICATES")
			continue
		}
		if sorted[0] != 1 || sorted[len(sorted)-1] != int64(len(sorted)) {
			problems = append(problems, "GAPS")
		}
	}
	if n != total {
		problems = append(problems, fmt.Sprintf("%d events, want %d", n, total))
	}
	if len(problems) == 0 {
		return "ok"
	}
	slices.Sort(problems)
	return strings.Join(slices.Compact(problems), ", ")
}

// readOneStream (R1): read one stream fully, again and again.
func readOneStream(ctx context.Context, s subject, sz sizes) (sample, error) {
	stream := streamName("r1", 0)
	if err := fill(ctx, s, stream, payloads(0, sz.r1Events), sz.fillBatch); err != nil {
		return sample{}, err
	}
	var sk sink
	return timed(sz.r1Reads*sz.r1Events, func() error {
		for range sz.r1Reads {
			n, err := s.readStream(ctx, stream, sk.take)
			if err != nil {
				return err
			}
			if n != sz.r1Events {
				return fmt.Errorf("read %d events of %s, want %d", n, stream, sz.r1Events)
			}
		}
		return nil
	})
}

// readAllEvents (R2): read every event of the store in global order, measuring the heap
// growth meanwhile.
func readAllEvents(ctx context.Context, s subject, sz sizes) (sample, error) {
	if err := fillStreams(ctx, s, "r2", sz.r2Events, sz.fillBatch); err != nil {
		return sample{}, err
	}
	var sk sink
	runtime.GC()
	peak := startHeapPeak()
	smp, err := timed(sz.r2Events, func() error {
		n, err := s.readAll(ctx, sk.take)
		if err == nil && n != sz.r2Events {
			err = fmt.Errorf("read %d events, want %d", n, sz.r2Events)
		}
		return err
	})
	smp.peakHeap = peak.stop()
	return smp, err
}

// fillStreams appends n events to new streams of perStream events each, in
// one append per stream. Its time is not measured.
func fillStreams(ctx context.Context, s subject, workload string, n, perStream int) error {
	for first := 0; first < n; first += perStream {
		evs := payloads(first, min(perStream, n-first))
		if err := fill(ctx, s, streamName(workload, first/perStream), evs, perStream); err != nil {
			return err
		}
	}
	return nil
}

// fill appends evs to a new stream in batches. Its time is not measured.
func fill(ctx context.Context, s subject, stream string, evs []payload, batch int) error {
	for v := 0; v < len(evs); v += batch {
		if err := s.append(ctx, stream, int64(v), evs[v:min(v+batch, len(evs))]); err != nil {
			return fmt.Errorf("fill %s: %w", stream, err)
		}
	}
	return nil
}
