package runner

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of the runner's metrics.
const meterName = "github.com/cairnhq/cairn/runner"

// observeTimeout bounds the queries of one collection of the gauges.
const observeTimeout = 5 * time.Second

// recordedAter is implemented by a store that says when the event at a
// position was recorded (*eventstore.Store): the runner then reports
// each processor's lag in seconds.
type recordedAter interface {
	// RecordedAt returns when the newest event at or before position was
	// recorded (when there is none, the oldest event; the zero time in an
	// empty store).
	RecordedAt(ctx context.Context, position int64) (time.Time, error)
}

// states are the states the cairn.processor.state gauge reports, one
// series each.
var states = [...]State{Starting, Standby, CatchingUp, Live, Retrying, Paused, Failed, Stopped}

// meters are the runner's instruments: gauges observed when the metrics
// are collected (see "Metrics" in the package documentation), with the
// attribute sets of each processor, made once.
type meters struct {
	meter                       metric.Meter
	position, head, lag, parked metric.Int64ObservableGauge
	state                       metric.Int64ObservableGauge
	lagDuration                 metric.Float64ObservableGauge
	procs                       []procAttrs // in the order of Runner.procs
	instruments                 []metric.Observable
}

// procAttrs are a processor's attribute sets: its name and kind, and
// those with each of the states.
type procAttrs struct {
	of     []metric.ObserveOption
	states [len(states)][]metric.ObserveOption
}

// The attribute keys of the runner's metrics; the processors' counters
// (package processing) use the same.
const (
	attrName  = attribute.Key("cairn.processor.name")
	attrKind  = attribute.Key("cairn.processor.kind")
	attrState = attribute.Key("cairn.processor.state")
)

func newMeters(mp metric.MeterProvider, procs []*proc) (*meters, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := &meters{meter: mp.Meter(meterName)}
	var errs [6]error
	m.position, errs[0] = m.meter.Int64ObservableGauge("cairn.processor.position",
		metric.WithUnit("{position}"), metric.WithDescription("Position of the last event the processor has handled."))
	m.head, errs[1] = m.meter.Int64ObservableGauge("cairn.processor.head",
		metric.WithUnit("{position}"), metric.WithDescription("Position of the store's newest event, as the processor's lag is measured against."))
	m.lag, errs[2] = m.meter.Int64ObservableGauge("cairn.processor.lag",
		metric.WithUnit("{event}"), metric.WithDescription("Events from the processor's position to the head."))
	m.lagDuration, errs[3] = m.meter.Float64ObservableGauge("cairn.processor.lag.duration",
		metric.WithUnit("s"), metric.WithDescription("Recorded time of the newest event minus that of the last event the processor handled; 0 when it has caught up."))
	m.parked, errs[4] = m.meter.Int64ObservableGauge("cairn.processor.parked",
		metric.WithUnit("{event}"), metric.WithDescription("Events the processor has parked."))
	m.state, errs[5] = m.meter.Int64ObservableGauge("cairn.processor.state",
		metric.WithUnit("{state}"), metric.WithDescription("1 for the processor's current state (cairn.processor.state), 0 for the others."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	m.instruments = []metric.Observable{m.position, m.head, m.lag, m.lagDuration, m.parked, m.state}
	for _, pr := range procs {
		name, kind := attrName.String(pr.p.Name()), attrKind.String(pr.kind)
		a := procAttrs{of: []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(name, kind))}}
		for i, s := range states {
			a.states[i] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(name, kind, attrState.String(string(s))))}
		}
		m.procs = append(m.procs, a)
	}
	return m, nil
}

// observe registers the callback that reports the gauges while r runs,
// and returns what unregisters it.
func (r *Runner) observe(ctx context.Context, log *slog.Logger) (stop func()) {
	reg, err := r.meters.meter.RegisterCallback(r.observeGauges, r.meters.instruments...)
	if err != nil {
		log.WarnContext(ctx, "runner metrics not registered", "error", err)
		return func() {}
	}
	return func() {
		if err := reg.Unregister(); err != nil {
			log.WarnContext(ctx, "runner metrics not unregistered", "error", err)
		}
	}
}

// observeGauges reports every processor's gauges from a fresh
// [Runner.Status] (one query for the head, and under OrderingXID one per
// processor to count its lag) and the recorded times of the head's event
// and of each lagging processor's position (one query each).
func (r *Runner) observeGauges(ctx context.Context, o metric.Observer) error {
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	st := r.Status(ctx)
	rt, timed := r.store.(recordedAter)
	var headAt time.Time
	var errs []error
	if timed && st.HeadError == nil {
		var err error
		if headAt, err = rt.RecordedAt(ctx, st.Head); err != nil {
			timed = false
			errs = append(errs, err)
		}
	}
	m := r.meters
	for i, ps := range st.Processors {
		a := &m.procs[i]
		o.ObserveInt64(m.position, ps.Position, a.of...)
		o.ObserveInt64(m.head, ps.Head, a.of...)
		o.ObserveInt64(m.lag, ps.Lag, a.of...)
		o.ObserveInt64(m.parked, int64(ps.Parked), a.of...)
		for j, s := range states {
			v := int64(0)
			if s == ps.State {
				v = 1
			}
			o.ObserveInt64(m.state, v, a.states[j]...)
		}
		switch {
		case ps.Lag == 0:
			o.ObserveFloat64(m.lagDuration, 0, a.of...)
		case timed:
			at, err := rt.RecordedAt(ctx, ps.Position)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o.ObserveFloat64(m.lagDuration, max(headAt.Sub(at).Seconds(), 0), a.of...)
		}
	}
	return errors.Join(errs...)
}
