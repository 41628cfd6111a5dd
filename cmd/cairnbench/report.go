package main

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
)

// writeReport writes the header line and the markdown table.
func writeReport(w io.Writer, cfg config, rep report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cairnbench: %d CPUs, %s/%s, %s; sizes %s, median of %d run(s) per side, each on a fresh database; figures in %s unless told; floor = the minimal event store (DESIGN.md) for the store workloads, each workload's own otherwise; ratio = Cairn/floor; same-schema floor = the same plain code on a table of Cairn's shape",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), cfg.sizeName, cfg.runs, defaultUnit)
	for _, d := range rep.databases {
		b.WriteString("; " + d)
	}
	b.WriteString("\n\n")
	b.WriteString("| workload | db | Cairn | floor | ratio | same-schema floor | ratio | notes |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rep.results {
		writeRow(&b, r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRow(b *strings.Builder, r result) {
	format := r.workload.format
	if format == nil {
		format = formatValue
	}
	floor, rat := "—", "—"
	if r.floor.runs > 0 {
		floor = format(r.floor.median)
		rat = strconv.FormatFloat(ratio(r.cairn, r.floor), 'f', 2, 64)
	}
	sfloor, srat := "—", "—"
	if r.schemaFloor.runs > 0 {
		sfloor = format(r.schemaFloor.median)
		srat = strconv.FormatFloat(ratio(r.cairn, r.schemaFloor), 'f', 2, 64)
	}
	unit := ""
	if r.workload.unit != defaultUnit {
		unit = " (" + r.workload.unit + ")"
	}
	fmt.Fprintf(b, "| %s %s%s | %s | %s | %s | %s | %s | %s | %s |\n",
		r.workload.id, r.workload.title, unit, r.target,
		format(r.cairn.median), floor, rat, sfloor, srat, notes(r))
}

// notes returns the notes cell: what the workload reports besides its
// figures, and the spread of the runs.
func notes(r result) string {
	var parts []string
	both := func(label string, f func(summary) string) {
		s := label + ": Cairn " + f(r.cairn)
		if r.floor.runs > 0 {
			s += ", floor " + f(r.floor)
		}
		if r.schemaFloor.runs > 0 {
			s += ", same-schema floor " + f(r.schemaFloor)
		}
		parts = append(parts, s)
	}
	w := r.workload
	if w.conflicts {
		both("conflicts", func(s summary) string { return strconv.Itoa(s.conflicts) })
	}
	if w.check {
		both("versions", func(s summary) string { return s.check })
	}
	if w.heap {
		both("peak heap", func(s summary) string { return formatBytes(s.peakHeap) })
	}
	for _, x := range w.extras {
		f := func(s summary) string {
			v, ok := s.extras[x.key]
			if !ok {
				return "—"
			}
			return x.format(v)
		}
		if x.floorOnly {
			if r.floor.runs > 0 {
				parts = append(parts, x.label+": "+f(r.floor))
			}
			continue
		}
		both(x.label, f)
		c, okc := r.cairn.extras[x.key]
		fl, okf := r.floor.extras[x.key]
		if x.costRatio && okc && okf && fl > 0 {
			parts[len(parts)-1] += fmt.Sprintf(" (×%.2f)", c/fl)
		}
	}
	if r.cairn.runs > 1 {
		both("spread", func(s summary) string { return fmt.Sprintf("±%.0f%%", 100*s.spread) })
	}
	return strings.Join(parts, "; ")
}

// formatValue formats a figure with thousands separators, with one decimal
// below 100.
func formatValue(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// formatMs formats a duration in milliseconds with two decimals.
func formatMs(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// formatNs returns a formatter of a figure in nanoseconds with one
// decimal, followed by unit.
func formatNs(unit string) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit }
}

func formatBytes(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
