package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// extraWritten is the key of the append workloads' bytes written per
// event: what the database wrote for each event appended, the figure that
// an index or a random key changes and that a busy machine does not.
const extraWritten = "written"

// written returns a counter of the bytes db has written so far: for SQLite,
// which runs in this process, the bytes this process has handed to write(2)
// (the WAL, and the database file at checkpoints); for PostgreSQL, the
// cluster's WAL position, which counts every session's writes, so that the
// figure is only this workload's on an otherwise idle cluster.
func written(ctx context.Context, db *database) (int64, error) {
	if db.kind == kindPostgres {
		var n int64
		err := db.sql.QueryRowContext(ctx, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").Scan(&n)
		return n, err
	}
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("wchar: ")); ok {
			return strconv.ParseInt(string(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/io has no wchar line")
}

// extraCPU is the key of the append workloads' CPU time per event, in
// microseconds: this process's (user and system), which on SQLite is the
// whole work and on PostgreSQL the client's part. Like extraWritten, a busy
// machine blurs it much less than a rate.
const extraCPU = "cpu"

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// withWritten wraps an append workload's side so that its sample reports
// the bytes written and the CPU time used per event, over the n events its
// driver appends.
func withWritten(m measureFunc, n func(sizes) int) measureFunc {
	return func(ctx context.Context, db *database, sz sizes) (sample, error) {
		before, err := written(ctx, db)
		if err != nil {
			return sample{}, fmt.Errorf("bytes written: %w", err)
		}
		cpu := processCPU()
		s, err := m(ctx, db, sz)
		if err != nil {
			return s, err
		}
		cpu = processCPU() - cpu
		after, err := written(ctx, db)
		if err != nil {
			return sample{}, fmt.Errorf("bytes written: %w", err)
		}
		if s.extras == nil {
			s.extras = map[string]float64{}
		}
		s.extras[extraWritten] = float64(after-before) / float64(n(sz))
		s.extras[extraCPU] = float64(cpu.Microseconds()) / float64(n(sz))
		return s, nil
	}
}

// writtenExtra is the notes' entry for extraWritten.
var writtenExtra = extra{key: extraWritten, label: "written", costRatio: true, format: func(v float64) string {
	return strconv.FormatFloat(v, 'f', 0, 64) + " B/event"
}}

// cpuExtra is the notes' entry for extraCPU.
var cpuExtra = extra{key: extraCPU, label: "CPU of this process", costRatio: true, format: func(v float64) string {
	return strconv.FormatFloat(v, 'f', 1, 64) + " µs/event"
}}

// measuringWritten makes w, an append workload of n events, report the
// bytes written and the CPU time per event on every side.
func measuringWritten(w workload, n func(sizes) int) workload {
	w.cairn = withWritten(w.cairn, n)
	w.floor = withWritten(w.floor, n)
	w.schemaFloor = withWritten(w.schemaFloor, n)
	w.extras = append(w.extras, writtenExtra, cpuExtra)
	return w
}
