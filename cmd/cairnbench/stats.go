package main

import (
	"slices"
	"strings"
)

// summary condenses the samples of one side of one workload on one
// database.
type summary struct {
	runs      int
	median    float64            // of the values
	spread    float64            // (max - min) / 2 / median of the values
	conflicts int                // median
	peakHeap  uint64             // highest of the runs
	check     string             // "ok" when every run's check was, else the problems
	extras    map[string]float64 // median of each extra figure, over the runs that measured it
}

func summarize(samples []sample) summary {
	if len(samples) == 0 {
		return summary{}
	}
	values := make([]float64, len(samples))
	conflicts := make([]float64, len(samples))
	s := summary{runs: len(samples)}
	var problems []string
	extras := map[string][]float64{}
	for i, smp := range samples {
		for k, v := range smp.extras {
			extras[k] = append(extras[k], v)
		}
		values[i] = smp.value
		conflicts[i] = float64(smp.conflicts)
		s.peakHeap = max(s.peakHeap, smp.peakHeap)
		if smp.check != "ok" {
			problems = append(problems, smp.check)
		}
	}
	s.median = median(values)
	if s.median > 0 {
		s.spread = (slices.Max(values) - slices.Min(values)) / 2 / s.median
	}
	s.conflicts = int(median(conflicts))
	if len(extras) > 0 {
		s.extras = make(map[string]float64, len(extras))
		for k, vs := range extras {
			s.extras[k] = median(vs)
		}
	}
	s.check = "ok"
	if len(problems) > 0 {
		slices.Sort(problems)
		s.check = strings.Join(slices.Compact(problems), "; ")
	}
	return s
}

// median returns the middle value of xs (the mean of the two middle ones
// for an even count); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ratio returns cairn/floor, or 0 when there is no floor figure.
func ratio(cairn, floor summary) float64 {
	if floor.median == 0 {
		return 0
	}
	return cairn.median / floor.median
}
