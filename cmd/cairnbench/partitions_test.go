package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestPartitionsSmoke runs the partitions workload briefly on PostgreSQL
// and checks that every shape produced a positive figure; it never looks
// at how fast anything was.
func TestPartitionsSmoke(t *testing.T) {
	if os.Getenv(envPostgres) == "" {
		t.Skipf("%s not set", envPostgres)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-partitions", "-tiny"}, &out, t.Output()); err != nil {
		t.Fatalf("run(-partitions -tiny) = %v", err)
	}
	t.Logf("\n%s", out.String())
	rows := 0
	for l := range strings.Lines(out.String()) {
		f := strings.Split(l, "|")
		if len(f) < 6 || strings.Contains(l, "---") || strings.Contains(l, "partitions") {
			continue
		}
		rows++
		if v := strings.TrimSpace(f[4]); v == "0" || v == "" || strings.Contains(v, "NaN") {
			t.Errorf("row %q has no figure", strings.TrimSpace(l))
		}
	}
	if rows != len(partitionShapes()) {
		t.Errorf("%d rows, want %d:\n%s", rows, len(partitionShapes()), out.String())
	}
}
