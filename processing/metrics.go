package processing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/event"
)

// meterName is the instrumentation scope of the processors' metrics.
const meterName = "github.com/cairnhq/cairn/processing"

// The attribute keys of the processors' metrics; package runner uses the
// same names for its gauges.
const (
	attrName   = attribute.Key("cairn.processor.name")
	attrKind   = attribute.Key("cairn.processor.kind")
	attrAction = attribute.Key("cairn.processor.action")
)

// meters are a processor's instruments, made by New from
// Options.MeterProvider (see "Metrics" in the package documentation).
type meters struct {
	events   metric.Int64Counter
	failures metric.Int64Counter
}

func newMeters(mp metric.MeterProvider) (meters, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(meterName)
	var m meters
	var err1, err2 error
	m.events, err1 = meter.Int64Counter("cairn.processor.events",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events a processor handled and committed (events of types it does not handle are not counted)."))
	m.failures, err2 = meter.Int64Counter("cairn.processor.failures",
		metric.WithUnit("{failure}"),
		metric.WithDescription("Failed attempts of a processor, by what it did next (cairn.processor.action: retry, park or stop)."))
	return m, errors.Join(err1, err2)
}

// runMeters are a processor's instruments with its attribute sets, made
// once per run so that counting a batch allocates nothing.
type runMeters struct {
	meters
	handled             []metric.AddOption
	retry, park, stopOp []metric.AddOption
}

// runMeters returns p's instruments with its attribute sets.
func (p *Processor) runMeters() runMeters {
	opt := func(kv ...attribute.KeyValue) []metric.AddOption {
		kv = append(kv, attrName.String(p.name), attrKind.String(p.kind))
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	return runMeters{
		meters:  p.meters,
		handled: opt(),
		retry:   opt(attrAction.String("retry")),
		park:    opt(attrAction.String("park")),
		stopOp:  opt(attrAction.String("stop")),
	}
}

// batch counts the events of b (as handed to the handler) that the
// handler committed: those after from up to saved.
func (m *runMeters) batch(ctx context.Context, b event.Batch, from, saved int64) {
	if saved <= from || len(b.Events) == 0 || m.events == nil {
		return
	}
	n := len(b.Events)
	if saved < b.Through {
		n = 0
		for _, e := range b.Events {
			if e.Position > from && e.Position <= saved {
				n++
			}
		}
	}
	if n > 0 {
		m.events.Add(ctx, int64(n), m.handled...)
	}
}

// handledOne counts one event handled under Options.Concurrency, where
// events are handled one by one and their position saved later: it counts
// them as they are handled (a crash may handle some again), not as they
// are committed.
func (m *runMeters) handledOne(ctx context.Context) {
	if m.events != nil {
		m.events.Add(ctx, 1, m.handled...)
	}
}

// failed counts a failed attempt and what the processor does next.
func (m *runMeters) failed(ctx context.Context, f Failure) {
	if m.failures == nil {
		return
	}
	switch {
	case f.Parked:
		m.failures.Add(ctx, 1, m.park...)
	case f.Retry:
		m.failures.Add(ctx, 1, m.retry...)
	default:
		m.failures.Add(ctx, 1, m.stopOp...)
	}
}
