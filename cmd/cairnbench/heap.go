package main

import (
	"runtime/metrics"
	"time"
)

// heapSampleInterval is how often a heapPeak samples the heap.
const heapSampleInterval = 2 * time.Millisecond

// heapMetric is the bytes of heap objects, live or not yet swept: what
// runtime.MemStats calls HeapAlloc, read without stopping the world.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapPeak samples the heap in a goroutine of its own until stopped and
// keeps the highest value.
type heapPeak struct {
	baseline uint64
	stopc    chan struct{}
	done     chan uint64
}

// startHeapPeak takes the current heap as the baseline and starts
// sampling. Call runtime.GC first for a baseline of live data only.
func startHeapPeak() *heapPeak {
	h := &heapPeak{baseline: heapBytes(), stopc: make(chan struct{}), done: make(chan uint64, 1)}
	go h.run()
	return h
}

func (h *heapPeak) run() {
	t := time.NewTicker(heapSampleInterval)
	defer t.Stop()
	peak := h.baseline
	for {
		select {
		case <-t.C:
			peak = max(peak, heapBytes())
		case <-h.stopc:
			h.done <- max(peak, heapBytes())
			return
		}
	}
}

// stop ends the sampling and returns the peak's growth over the baseline.
func (h *heapPeak) stop() uint64 {
	close(h.stopc)
	return <-h.done - h.baseline
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
