package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestSmoke runs every workload with tiny sizes on SQLite (FULL and
// NORMAL), and on PostgreSQL when CAIRN_POSTGRES_DSN is set. It checks that
// each produced positive figures (and its extra figures: A1's in-memory
// replay, L1's p99), that W4 found no duplicates, and, through the
// workloads' own checks, that A1 rebuilt the account and P1 and L1
// projected every event; it never looks at how fast anything was.
func TestSmoke(t *testing.T) {
	db := "sqlite"
	if os.Getenv(envPostgres) != "" {
		db = "both"
	}
	cfg, err := parseFlags([]string{"-tiny", "-db", db, "-sqlite", t.TempDir()}, t.Output())
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	rep, err := execute(t.Context(), cfg, t.Output())
	if err != nil {
		t.Fatalf("execute: %v", err)
	}

	targets := len(cfg.syncs)
	if cfg.postgres {
		targets++
	}
	if got, want := len(rep.results), len(allWorkloads())*targets; got != want {
		t.Fatalf("%d results, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, r := range rep.results {
		seen[r.workload.id] = true
		name := r.workload.id + " on " + r.target
		switch {
		case r.workload.floor == nil:
			if r.cairn.median <= 0 || r.floor.runs != 0 {
				t.Errorf("%s: Cairn %v, floor %d runs, want Cairn positive and no floor", name, r.cairn.median, r.floor.runs)
			}
		case r.cairn.median <= 0 || r.floor.median <= 0 || ratio(r.cairn, r.floor) <= 0:
			t.Errorf("%s: Cairn %v, floor %v, want both positive", name, r.cairn.median, r.floor.median)
		}
		if r.workload.schemaFloor != nil && r.schemaFloor.median <= 0 {
			t.Errorf("%s: same-schema floor %v, want positive", name, r.schemaFloor.median)
		}
		if r.workload.check && r.workload.schemaFloor != nil && r.schemaFloor.check != "ok" {
			t.Errorf("%s: versions check of the same-schema floor %q, want ok", name, r.schemaFloor.check)
		}
		for _, x := range r.workload.extras {
			if v, ok := r.cairn.extras[x.key]; !x.floorOnly && (!ok || v < 0 || (v == 0 && !x.mayBeZero)) {
				t.Errorf("%s: Cairn's %s is %v, want positive", name, x.label, v)
			}
			if v, ok := r.floor.extras[x.key]; r.workload.floor != nil && (x.costRatio || x.floorOnly) && (!ok || v <= 0) {
				t.Errorf("%s: floor's %s is %v, want positive", name, x.label, v)
			}
		}
		if r.workload.check && (r.cairn.check != "ok" || r.floor.check != "ok") {
			t.Errorf("%s: versions check Cairn %q, floor %q, want ok", name, r.cairn.check, r.floor.check)
		}
		if r.workload.heap && r.cairn.peakHeap == 0 {
			t.Errorf("%s: no peak heap measured for Cairn", name)
		}
	}
	for _, id := range workloadIDs(allWorkloads()) {
		if !seen[id] {
			t.Errorf("no result for %s", id)
		}
	}

	var out bytes.Buffer
	if err := writeReport(&out, cfg, rep); err != nil {
		t.Fatalf("writeReport: %v", err)
	}
	rows := 0
	for line := range strings.Lines(out.String()) {
		for _, id := range workloadIDs(allWorkloads()) {
			if strings.HasPrefix(line, "| "+id+" ") {
				rows++
			}
		}
	}
	if rows != len(rep.results) {
		t.Errorf("report has %d rows, want %d:\n%s", rows, len(rep.results), out.String())
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv(envPostgres, "")
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(config) bool
	}{
		{"defaults to SQLite without a DSN", nil, false, func(c config) bool {
			return c.sqlite && !c.postgres && c.runs == 5 && len(c.syncs) == 2 && len(c.workloads) == len(allWorkloads())
		}},
		{"quick makes one run", []string{"-quick"}, false, func(c config) bool { return c.runs == 1 && c.sizeName == "quick" }},
		{"quick keeps explicit runs", []string{"-quick", "-runs", "3"}, false, func(c config) bool { return c.runs == 3 }},
		{"only selects in report order", []string{"-only", "r2, w1"}, false, func(c config) bool {
			return slices.Equal(workloadIDs(c.workloads), []string{"W1", "R2"})
		}},
		{"DSN turns PostgreSQL on", []string{"-postgres", "postgres://x@localhost/db"}, false, func(c config) bool { return c.postgres }},
		{"unknown workload", []string{"-only", "W9"}, true, nil},
		{"postgres without a DSN", []string{"-db", "postgres"}, true, nil},
		{"bad sync", []string{"-sync", "off"}, true, nil},
		{"zero runs", []string{"-runs", "0"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, t.Output())
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(cfg) {
				t.Errorf("parseFlags(%q) = %+v", tt.args, cfg)
			}
		})
	}
}

func TestCheckVersions(t *testing.T) {
	tests := []struct {
		name  string
		vs    map[string][]int64
		total int
		want  string
	}{
		{"ok", map[string][]int64{"a": {1, 2, 3}, "b": {2, 1}}, 5, "ok"},
		{"duplicates", map[string][]int64{"a": {1, 2, 2}}, 3, "DUPLICATES"},
		{"gap", map[string][]int64{"a": {1, 3}}, 2, "GAPS"},
		{"lost events", map[string][]int64{"a": {1, 2}}, 3, "2 events, want 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkVersions(tt.vs, tt.total); got != tt.want {
				t.Errorf("checkVersions(%v, %d) = %q, want %q", tt.vs, tt.total, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

// TestScaleSmoke runs the scale mode at two small sizes on SQLite (and on
// PostgreSQL when CAIRN_POSTGRES_DSN is set): every figure must be
// positive and the rare-type read must find every rare event (the mode
// checks that itself).
func TestScaleSmoke(t *testing.T) {
	db := "sqlite"
	if os.Getenv(envPostgres) != "" {
		db = "both"
	}
	cfg, err := parseFlags([]string{"-tiny", "-scale", "5k,8k", "-db", db, "-sync", "normal", "-sqlite", t.TempDir()}, t.Output())
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	results, about, err := executeScale(t.Context(), cfg, t.Output())
	if err != nil {
		t.Fatalf("executeScale: %v", err)
	}
	for _, res := range results {
		if len(res.rows) != 2 {
			t.Fatalf("%s: %d rows, want 2", res.target, len(res.rows))
		}
		for _, r := range res.rows {
			if r.w1Median <= 0 || r.w3P99 <= 0 || r.r1 <= 0 || r.rare <= 0 || r.catchUp <= 0 ||
				r.loadPlain <= 0 || r.loadSnapshot <= 0 || r.bytesPerEvent <= 0 {
				t.Errorf("%s at %d events: %+v, want every figure positive", res.target, r.events, r)
			}
		}
	}
	var out bytes.Buffer
	if err := writeScaleReport(&out, about, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "bytes on disk per event") {
		t.Errorf("report lacks the disk line:\n%s", out.String())
	}
}

func TestParseScale(t *testing.T) {
	if got, err := parseScale("1M, 10M"); err != nil || !slices.Equal(got, []int{1_000_000, 10_000_000}) {
		t.Errorf("parseScale(1M, 10M) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "10M,1M", "x", "-5", "100"} {
		if _, err := parseScale(bad); err == nil {
			t.Errorf("parseScale(%q) succeeded, want an error", bad)
		}
	}
}
