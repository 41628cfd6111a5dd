package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sizes are the amounts of work of the workloads.
type sizes struct {
	w1Appends, w1Streams              int
	w2Batches, w2BatchSize, w2Streams int
	w3Writers, w3Appends, w3Streams   int // appends and streams per writer
	w4Writers, w4Appends, w4Streams   int // appends per writer, streams shared
	r1Events, r1Reads                 int
	r2Events                          int
	a1Events, a1Loads, a1MemLoads     int // events of the aggregate; loads from the database; loads from memory per round (see foldRounds)
	p1Events                          int
	l1Appends                         int
	fillBatch                         int // events per append when filling a store to read
	s1                                scaleOutSizes
}

func fullSizes() sizes {
	return sizes{
		w1Appends: 2000, w1Streams: 200,
		w2Batches: 200, w2BatchSize: 100, w2Streams: 20,
		w3Writers: 8, w3Appends: 500, w3Streams: 25,
		w4Writers: 8, w4Appends: 250, w4Streams: 4,
		r1Events: 1000, r1Reads: 50,
		r2Events: 100_000,
		a1Events: 1000, a1Loads: 100, a1MemLoads: 1000,
		p1Events:  100_000,
		l1Appends: 1000,
		fillBatch: 1000,
		s1:        scaleOutFull,
	}
}

func quickSizes() sizes {
	return sizes{
		w1Appends: 200, w1Streams: 20,
		w2Batches: 20, w2BatchSize: 100, w2Streams: 4,
		w3Writers: 8, w3Appends: 50, w3Streams: 5,
		w4Writers: 8, w4Appends: 25, w4Streams: 4,
		r1Events: 1000, r1Reads: 5,
		r2Events: 10_000,
		a1Events: 1000, a1Loads: 10, a1MemLoads: 200,
		p1Events:  10_000,
		l1Appends: 100,
		fillBatch: 1000,
		s1:        scaleOutQuick,
	}
}

// tinySizes are for smoke tests: every workload does a little of its work.
func tinySizes() sizes {
	return sizes{
		w1Appends: 10, w1Streams: 3,
		w2Batches: 3, w2BatchSize: 10, w2Streams: 2,
		w3Writers: 8, w3Appends: 3, w3Streams: 2,
		w4Writers: 8, w4Appends: 3, w4Streams: 4,
		r1Events: 50, r1Reads: 2,
		r2Events: 300,
		a1Events: 50, a1Loads: 2, a1MemLoads: 2,
		p1Events:  300,
		l1Appends: 10,
		fillBatch: 100,
		s1:        scaleOutTiny,
	}
}

// defaultUnit is the unit of most workloads' figures.
const defaultUnit = "events/s"

// sample is what one run of one side of a workload measured.
type sample struct {
	value     float64 // in the workload's unit
	conflicts int     // version conflicts met (workloads that count them)
	peakHeap  uint64  // heap growth over the baseline, in bytes (workloads that measure it)
	check     string  // outcome of the workload's check: "ok" or what is wrong
	// extras are further figures, by key (see workload.extras).
	extras map[string]float64
}

// extra is a further figure a workload reports in its notes: the median
// over the runs of sample.extras[key], for each side that measured it.
type extra struct {
	key, label string
	format     func(float64) string
	// costRatio adds Cairn's figure over the floor's (for figures where
	// lower is better, such as a cost per event).
	costRatio bool
	// floorOnly marks a reference figure that only the floor's side
	// measures.
	floorOnly bool
	// mayBeZero marks a figure for which 0 is a valid measurement (a
	// conflict rate), not a sign that nothing was measured.
	mayBeZero bool
}

// measureFunc runs one side of a workload once on a fresh database.
type measureFunc func(ctx context.Context, db *database, sz sizes) (sample, error)

// workload is one line of the report. Cairn's side and the floor's side
// may be any code: store workloads run the same driver on both (see
// onBoth); workloads of other parts (aggregate loads, projectors) bring
// their own pair. A nil floor reports Cairn's figure alone.
type workload struct {
	id    string // what -only selects: "W1", "R2", …
	title string
	unit  string // of sample.value; defaultUnit for most
	cairn measureFunc
	floor measureFunc
	// schemaFloor, for the store workloads, is the same work on a table of
	// Cairn's own shape (floor.go): the report's second floor. floor is
	// then the minimal one (floor_minimal.go).
	schemaFloor measureFunc
	// format formats the figures of the Cairn and floor columns; nil
	// means formatValue.
	format func(float64) string
	// What the notes report besides the figures.
	conflicts, heap, check bool
	extras                 []extra
}

// allWorkloads lists the workloads in report order: the event store's
// (W*, R*), which run the same driver on both sides, then those of the
// aggregate (A1) and projector (P1, L1) packages, each with its own pair
// of measureFuncs.
func allWorkloads() []workload {
	contended := storeWorkload("W4", "8 writers, 4 shared streams, read version + append, retry on conflict", appendContended)
	contended.conflicts, contended.check = true, true
	contended.extras = []extra{{key: extraConflictRate, label: "conflict rate", mayBeZero: true, format: func(v float64) string {
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	}}}
	readAll := storeWorkload("R2", "read all events in global order", readAllEvents)
	readAll.heap = true
	return []workload{
		measuringWritten(storeWorkload("W1", "1 writer, 1 event/append", appendOne), func(sz sizes) int { return sz.w1Appends }),
		measuringWritten(storeWorkload("W2", "1 writer, batches of 100 events", appendBatches), func(sz sizes) int { return sz.w2Batches * sz.w2BatchSize }),
		measuringWritten(storeWorkload("W3", "8 writers, 1 event/append, own streams", appendConcurrent), func(sz sizes) int { return sz.w3Writers * sz.w3Appends }),
		contended,
		storeWorkload("R1", "read a 1,000-event stream", readOneStream),
		readAll,
		{
			id:    "A1",
			title: "load a 1,000-event aggregate, On<Event> dispatch",
			unit:  "loads/s",
			cairn: loadAggregate[Account](false),
			floor: loadAggregateFloor,
			extras: []extra{
				{key: extraFold, label: "in-memory replay", format: formatNs("ns/event"), costRatio: true},
				{key: extraReflectFold, label: "plain reflect.Value.Call replay", format: formatNs("ns/event"), floorOnly: true},
			},
		},
		{
			id:    "A1S",
			title: "A1 from a snapshot at version 1,000 (floor: A1's)",
			unit:  "loads/s",
			cairn: loadAggregate[Account](true),
			floor: loadAggregateFloor,
		},
		{
			id:     "A1H",
			title:  "A1 with the handlers listed (aggregate.Handlers): direct calls",
			unit:   "loads/s",
			cairn:  loadAggregate[ListedAccount](false),
			floor:  loadAggregateFloor,
			extras: []extra{{key: extraFold, label: "in-memory replay", format: formatNs("ns/event"), costRatio: true}},
		},
		{
			id:    "P1",
			title: "projector catch-up into a table",
			unit:  defaultUnit,
			cairn: catchUp,
			floor: catchUpFloor,
		},
		{
			id:     "L1",
			title:  "live latency, Append returned → projector committed",
			unit:   "ms, median",
			cairn:  liveLatency,
			format: formatMs,
			extras: []extra{{key: extraP99, label: "p99", format: func(v float64) string { return formatMs(v) + " ms" }}},
		},
		rywWorkload(),
		scaleOutWorkload(), // scaleout.go
	}
}

// storeWorkload runs drive on Cairn's store, on the minimal floor and on
// the same-schema floor.
func storeWorkload(id, title string, drive func(context.Context, subject, sizes) (sample, error)) workload {
	return workload{
		id:    id,
		title: title,
		unit:  defaultUnit,
		cairn: func(ctx context.Context, db *database, sz sizes) (sample, error) {
			s, err := newCairn(ctx, db)
			if err != nil {
				return sample{}, err
			}
			return drive(ctx, s, sz)
		},
		floor: func(ctx context.Context, db *database, sz sizes) (sample, error) {
			f, err := newMinimalFloor(ctx, db)
			if err != nil {
				return sample{}, err
			}
			return drive(ctx, f, sz)
		},
		schemaFloor: func(ctx context.Context, db *database, sz sizes) (sample, error) {
			f, err := newFloor(ctx, db)
			if err != nil {
				return sample{}, err
			}
			return drive(ctx, f, sz)
		},
	}
}

func workloadIDs(ws []workload) []string {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.id
	}
	return ids
}

// selectWorkloads returns the workloads named in the comma-separated list
// only, in report order; all of them when only is empty.
func selectWorkloads(only string) ([]workload, error) {
	all := allWorkloads()
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, id := range strings.Split(only, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		if !slices.Contains(workloadIDs(all), id) {
			return nil, fmt.Errorf("-only: unknown workload %q (have %s)", id, strings.Join(workloadIDs(all), ","))
		}
		want[id] = true
	}
	return slices.DeleteFunc(all, func(w workload) bool { return !want[w.id] }), nil
}
