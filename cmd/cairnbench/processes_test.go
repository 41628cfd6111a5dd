package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain makes the test binary a child process of the multi-process
// workloads when it is started as one (see startProcesses, which starts
// the running executable again).
func TestMain(m *testing.M) {
	if spec := os.Getenv(envProcessChild); spec != "" {
		if err := runProcessChild(context.Background(), spec, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "cairnbench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(envPartitionChild); spec != "" {
		if err := runPartitionChild(context.Background(), spec, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "cairnbench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProcessesSmoke runs every multi-process shape briefly on
// PostgreSQL, under both orderings, and checks that each produced a
// positive figure and a row of the table; it never looks at how fast
// anything was.
func TestProcessesSmoke(t *testing.T) {
	if os.Getenv(envPostgres) == "" {
		t.Skipf("%s not set", envPostgres)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-processes", "-tiny"}, &out, t.Output()); err != nil {
		t.Fatalf("run(-processes -tiny) = %v", err)
	}
	t.Logf("\n%s", out.String())
	table := out.String()
	for _, row := range []string{"| 1 × 8 (events/s) |", "| 2 × 4 (events/s) |", "| 4 × 2 (events/s) |", "| 8 × 1 (events/s) |",
		"| 1 × 1 (events/s) |", "| floor: 8 × 1, minimal schema |", "| subscription latency, 8 writer processes"} {
		i := strings.Index(table, row)
		if i < 0 {
			t.Errorf("no row %q in the table", row)
			continue
		}
		line, _, _ := strings.Cut(table[i:], "\n")
		if strings.Contains(line, "| 0 |") || strings.Contains(line, "NaN") {
			t.Errorf("row %q has no figure", line)
		}
	}
}

func TestSelectShapes(t *testing.T) {
	got, err := selectShapes("8x1, floor")
	if err != nil || len(got) != 2 || got[0].id != "8x1" || got[1].id != "floor" {
		t.Errorf(`selectShapes("8x1, floor") = %v, %v; want 8x1 and floor`, got, err)
	}
	if _, err := selectShapes("9x9"); err == nil {
		t.Error(`selectShapes("9x9") = nil error, want one`)
	}
}
