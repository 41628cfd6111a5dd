package testkit

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Metrics is an OpenTelemetry SDK meter provider whose measurements a test
// collects on demand (a manual reader): give Provider to the options of
// what the test measures, then read with [Metrics.Collect].
type Metrics struct {
	Provider *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
}

// NewMetrics returns a meter provider for t, shut down when t ends.
func NewMetrics(t testing.TB) *Metrics {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return &Metrics{Provider: mp, reader: r}
}

// Point is one data point of a metric: its attributes and its value (the
// sum of a counter, the value of a gauge, the sum of a histogram's
// measurements), with a histogram's count of measurements.
type Point struct {
	Attrs map[string]string
	Value float64
	Count uint64
}

// Snapshot holds the points of every metric collected, by metric name.
type Snapshot map[string][]Point

// Collect reads every metric of m now.
func (m *Metrics) Collect(t testing.TB) Snapshot {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatalf("Collect() = %v, want nil", err)
	}
	s := Snapshot{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			var ps []Point
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				ps = values(d.DataPoints)
			case metricdata.Sum[float64]:
				ps = values(d.DataPoints)
			case metricdata.Gauge[int64]:
				ps = values(d.DataPoints)
			case metricdata.Gauge[float64]:
				ps = values(d.DataPoints)
			case metricdata.Histogram[int64]:
				ps = histogram(d.DataPoints)
			case metricdata.Histogram[float64]:
				ps = histogram(d.DataPoints)
			default:
				t.Fatalf("metric %s: unexpected data %T", mt.Name, mt.Data)
			}
			s[mt.Name] = append(s[mt.Name], ps...)
		}
	}
	return s
}

func values[N int64 | float64](dps []metricdata.DataPoint[N]) []Point {
	ps := make([]Point, len(dps))
	for i, p := range dps {
		ps[i] = Point{Attrs: attrMap(p.Attributes), Value: float64(p.Value)}
	}
	return ps
}

func histogram[N int64 | float64](dps []metricdata.HistogramDataPoint[N]) []Point {
	ps := make([]Point, len(dps))
	for i, p := range dps {
		ps[i] = Point{Attrs: attrMap(p.Attributes), Value: float64(p.Sum), Count: p.Count}
	}
	return ps
}

func attrMap(set attribute.Set) map[string]string {
	m := make(map[string]string, set.Len())
	for _, kv := range set.ToSlice() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// Matching returns the points of the metric whose attributes include
// attrs, given as key, value, key, value, ….
func (s Snapshot) Matching(name string, attrs ...string) []Point {
	var out []Point
	for _, p := range s[name] {
		ok := true
		for i := 0; i+1 < len(attrs); i += 2 {
			if p.Attrs[attrs[i]] != attrs[i+1] {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// Value returns the sum of the values of the points of the metric whose
// attributes include attrs (see [Snapshot.Matching]), and their count of
// measurements (histograms only).
func (s Snapshot) Value(name string, attrs ...string) (value float64, count uint64) {
	for _, p := range s.Matching(name, attrs...) {
		value += p.Value
		count += p.Count
	}
	return value, count
}
