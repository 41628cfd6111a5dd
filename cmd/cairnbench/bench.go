package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// result is one row of the report: a workload on one database.
type result struct {
	workload workload
	target   string
	cairn    summary
	floor    summary // zero when the workload has no floor
	// schemaFloor is the same-schema floor's, for the store workloads.
	schemaFloor summary
}

// report is what execute measured and what the report says about the
// databases.
type report struct {
	databases []string
	results   []result
}

// execute runs the configured workloads on every configured database,
// logging progress to log.
func execute(ctx context.Context, cfg config, log io.Writer) (rep report, err error) {
	ts, err := openTargets(ctx, cfg)
	if err != nil {
		return report{}, err
	}
	defer func() { err = errors.Join(err, ts.close()) }()
	rep.databases = ts.about
	for _, w := range cfg.workloads {
		for _, t := range ts.list {
			r, err := runWorkload(ctx, cfg, w, t, log)
			if err != nil {
				return report{}, fmt.Errorf("%s on %s: %w", w.id, t.name, err)
			}
			rep.results = append(rep.results, r)
		}
	}
	return rep, nil
}

// runWorkload runs Cairn's side and the floors' sides of w alternately,
// cfg.runs times each, each time on a fresh database.
func runWorkload(ctx context.Context, cfg config, w workload, t target, log io.Writer) (result, error) {
	format := w.format
	if format == nil {
		format = formatValue
	}
	var cairn, floor, schemaFloor []sample
	for run := 1; run <= cfg.runs; run++ {
		c, err := measureOnce(ctx, t, w.cairn, cfg.sizes)
		if err != nil {
			return result{}, fmt.Errorf("measuring Cairn: %w", err)
		}
		cairn = append(cairn, c)
		line := fmt.Sprintf("%s %s run %d/%d: Cairn %s", w.id, t.name, run, cfg.runs, format(c.value))
		if w.floor != nil {
			f, err := measureOnce(ctx, t, w.floor, cfg.sizes)
			if err != nil {
				return result{}, fmt.Errorf("measuring the floor: %w", err)
			}
			floor = append(floor, f)
			line += fmt.Sprintf(", floor %s", format(f.value))
		}
		if w.schemaFloor != nil {
			f, err := measureOnce(ctx, t, w.schemaFloor, cfg.sizes)
			if err != nil {
				return result{}, fmt.Errorf("measuring the same-schema floor: %w", err)
			}
			schemaFloor = append(schemaFloor, f)
			line += fmt.Sprintf(", same-schema floor %s", format(f.value))
		}
		fmt.Fprintf(log, "%s %s\n", line, w.unit)
	}
	return result{workload: w, target: t.name, cairn: summarize(cairn), floor: summarize(floor), schemaFloor: summarize(schemaFloor)}, nil
}

// measureOnce runs one side of a workload on a fresh database of t and
// removes the database afterwards.
func measureOnce(ctx context.Context, t target, m measureFunc, sz sizes) (smp sample, err error) {
	db, err := t.open(ctx)
	if err != nil {
		return sample{}, err
	}
	defer func() { err = errors.Join(err, db.drop()) }()
	smp, err = m(ctx, db, sz)
	if err == nil && !(smp.value > 0) {
		err = fmt.Errorf("measured %v", smp.value)
	}
	return smp, err
}
