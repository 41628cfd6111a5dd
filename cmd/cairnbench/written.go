package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
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

// withWritten wraps an append workload's side so that its sample reports
// the bytes written per event, over the n events its driver appends.
func withWritten(m measureFunc, n func(sizes) int) measureFunc {
	return func(ctx context.Context, db *database, sz sizes) (sample, error) {
		before, err := written(ctx, db)
		if err != nil {
			return sample{}, fmt.Errorf("bytes written: %w", err)
		}
		s, err := m(ctx, db, sz)
		if err != nil {
			return s, err
		}
		after, err := written(ctx, db)
		if err != nil {
			return sample{}, fmt.Errorf("bytes written: %w", err)
		}
		if s.extras == nil {
			s.extras = map[string]float64{}
		}
		s.extras[extraWritten] = float64(after-before) / float64(n(sz))
		return s, nil
	}
}

// writtenExtra is the notes' entry for extraWritten.
var writtenExtra = extra{key: extraWritten, label: "written", costRatio: true, format: func(v float64) string {
	return strconv.FormatFloat(v, 'f', 0, 64) + " B/event"
}}

// measuringWritten makes w, an append workload of n events, report the
// bytes written per event on every side.
func measuringWritten(w workload, n func(sizes) int) workload {
	w.cairn = withWritten(w.cairn, n)
	w.floor = withWritten(w.floor, n)
	w.schemaFloor = withWritten(w.schemaFloor, n)
	w.extras = append(w.extras, writtenExtra)
	return w
}
