package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/event"
)

// meterName is the instrumentation scope of the store's metrics.
const meterName = "github.com/cairnhq/cairn/eventstore"

// durationBuckets are the bucket boundaries, in seconds, of the store's
// duration histograms: finer than OpenTelemetry's defaults (which suit
// milliseconds) down to 100µs, where appends on SQLite and reads of a
// few events land.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// batchBuckets are the bucket boundaries of the group-commit size
// histograms.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10_000}

// The attribute keys of the store's metrics.
const (
	attrDBSystem  = attribute.Key("db.system.name") // OpenTelemetry's
	attrErrorType = attribute.Key("error.type")     // OpenTelemetry's
	attrReadKind  = attribute.Key("cairn.read.kind")
)

// attrTx marks the appends of AppendTx and AppendAllTx, made in the
// caller's transaction (those of Append do not have it).
var attrTx = attribute.Key("cairn.append.transaction").String("caller")

// readKind says which kind of read a query serves, for the
// cairn.read.kind attribute.
type readKind int

const (
	readOfStream readKind = iota // ReadEvent, ReadStream(Backward), SubscribeStream
	readOfAll                    // ReadAll
	readOfBatch                  // ReadBatch(Of) and the subscriptions of processors
	readKinds
)

var readKindNames = [readKinds]string{readOfStream: "stream", readOfAll: "all", readOfBatch: "batch"}

// storeMetrics are the instruments of a store (see "Metrics" in the
// package documentation). The attribute sets of the successful case are
// made once, so that recording on the hot path allocates nothing; the
// error cases, rarer, build theirs when they happen.
type storeMetrics struct {
	appendDuration metric.Float64Histogram
	appendEvents   metric.Int64Counter
	batchEvents    metric.Int64Histogram
	batchAppends   metric.Int64Histogram
	readDuration   metric.Float64Histogram
	readEvents     metric.Int64Counter

	system attribute.KeyValue
	// ok holds the attributes of a successful append; read those of a
	// successful read of each kind.
	ok, tx attrs
	read   [readKinds]attrs
}

// newStoreMetrics makes the store's instruments from mp (nil means the
// global meter provider) for a database of the given OpenTelemetry
// db.system.name.
func newStoreMetrics(mp metric.MeterProvider, system string) (*storeMetrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(meterName)
	m := &storeMetrics{system: attrDBSystem.String(system)}
	var errs [6]error
	m.appendDuration, errs[0] = meter.Float64Histogram("cairn.append.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of Store.Append calls, queueing for the group commit included (cairn.append.transaction=caller: AppendTx and AppendAllTx, in the caller's transaction); error.type is set on failures."))
	m.appendEvents, errs[1] = meter.Int64Counter("cairn.append.events",
		metric.WithUnit("{event}"), metric.WithDescription("Events stored by Store.Append, or written in the caller's transaction by AppendTx and AppendAllTx (cairn.append.transaction=caller); idempotent replays excluded."))
	m.batchEvents, errs[2] = meter.Int64Histogram("cairn.append.batch.events",
		metric.WithUnit("{event}"), metric.WithExplicitBucketBoundaries(batchBuckets...),
		metric.WithDescription("Events written by one group-commit transaction."))
	m.batchAppends, errs[3] = meter.Int64Histogram("cairn.append.batch.appends",
		metric.WithUnit("{append}"), metric.WithExplicitBucketBoundaries(batchBuckets...),
		metric.WithDescription("Appends written by one group-commit transaction."))
	m.readDuration, errs[4] = meter.Float64Histogram("cairn.read.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of one query of a read (a page of events, decoding included); error.type is set on failures."))
	m.readEvents, errs[5] = meter.Int64Counter("cairn.read.events",
		metric.WithUnit("{event}"), metric.WithDescription("Events fetched and decoded by reads (a read fetches one event past a full page, to see whether it goes on)."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	m.ok = newAttrs(m.system)
	m.tx = newAttrs(m.system, attrTx)
	for k := range readKinds {
		m.read[k] = newAttrs(m.system, attrReadKind.String(readKindNames[k]))
	}
	return m, nil
}

// startAppend returns the time an append starts at, or the zero time when
// nobody collects its duration (and the clock need not be read).
func (m *storeMetrics) startAppend(ctx context.Context) time.Time {
	if !m.appendDuration.Enabled(ctx) {
		return time.Time{}
	}
	return time.Now()
}

// appended records the outcome of an Append that started at start (see
// startAppend) and stored n events (0 for a replay); err is its error.
func (m *storeMetrics) appended(ctx context.Context, start time.Time, n int, err error) {
	if err != nil {
		if !start.IsZero() {
			m.appendDuration.Record(ctx, time.Since(start).Seconds(), m.failed(err))
		}
		return
	}
	if !start.IsZero() {
		m.appendDuration.Record(ctx, time.Since(start).Seconds(), m.ok.rec...)
	}
	if n > 0 {
		m.appendEvents.Add(ctx, int64(n), m.ok.add...)
	}
}

// appendedTx is appended for AppendTx and AppendAllTx, whose events
// commit with the caller's transaction.
func (m *storeMetrics) appendedTx(ctx context.Context, start time.Time, n int, err error) {
	if err != nil {
		if !start.IsZero() {
			m.appendDuration.Record(ctx, time.Since(start).Seconds(), m.failed(err, attrTx))
		}
		return
	}
	if !start.IsZero() {
		m.appendDuration.Record(ctx, time.Since(start).Seconds(), m.tx.rec...)
	}
	if n > 0 {
		m.appendEvents.Add(ctx, int64(n), m.tx.add...)
	}
}

// committed records a group-commit transaction that wrote the live
// requests of a batch (those without an error, a replay or a deferral).
func (m *storeMetrics) committed(ctx context.Context, live []*request) {
	if !m.batchEvents.Enabled(ctx) && !m.batchAppends.Enabled(ctx) {
		return
	}
	var events, appends int64
	for _, r := range live {
		if r.err == nil && !r.replay && !r.deferred {
			events += int64(len(r.events))
			appends++
		}
	}
	if appends > 0 {
		m.batchEvents.Record(ctx, events, m.ok.rec...)
		m.batchAppends.Record(ctx, appends, m.ok.rec...)
	}
}

// startRead is startAppend for reads.
func (m *storeMetrics) startRead(ctx context.Context) time.Time {
	if !m.readDuration.Enabled(ctx) {
		return time.Time{}
	}
	return time.Now()
}

// readDone records a query of kind k that started at start (see
// startRead) and read n events, with err its error.
func (m *storeMetrics) readDone(ctx context.Context, k readKind, start time.Time, n int, err error) {
	if err != nil && !start.IsZero() {
		m.readDuration.Record(ctx, time.Since(start).Seconds(), m.failed(err, attrReadKind.String(readKindNames[k])))
	} else if !start.IsZero() {
		m.readDuration.Record(ctx, time.Since(start).Seconds(), m.read[k].rec...)
	}
	if n > 0 {
		m.readEvents.Add(ctx, int64(n), m.read[k].add...)
	}
}

// failed returns the attributes of a failure: the database, err's kind as
// error.type, and extra.
func (m *storeMetrics) failed(err error, extra ...attribute.KeyValue) metric.MeasurementOption {
	kv := append([]attribute.KeyValue{m.system, attrErrorType.String(errorType(err))}, extra...)
	return metric.WithAttributeSet(attribute.NewSet(kv...))
}

// errorType names the kind of a store error for the error.type attribute:
// a low-cardinality value per sentinel of the store, "_OTHER" for the
// rest (OpenTelemetry's fallback value).
func errorType(err error) string {
	var unknown *OutcomeUnknownError
	var decode *event.DecodeError
	switch {
	case errors.Is(err, event.ErrVersionConflict):
		return "version_conflict"
	case errors.Is(err, event.ErrStreamDeleted):
		return "stream_deleted"
	case errors.Is(err, event.ErrDuplicateEventID):
		return "duplicate_event_id"
	case errors.Is(err, ErrInvalidArgument):
		return "invalid_argument"
	case errors.As(err, &unknown):
		return "outcome_unknown"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.As(err, &decode):
		return "decode"
	case errors.Is(err, event.ErrUnknownType):
		return "unknown_type"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "_OTHER"
}

// attrs is one attribute set as the options of Record and Add, made
// once so that measuring with it allocates nothing.
type attrs struct {
	rec []metric.RecordOption
	add []metric.AddOption
}

func newAttrs(kv ...attribute.KeyValue) attrs {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return attrs{rec: []metric.RecordOption{o}, add: []metric.AddOption{o}}
}

// RecordedAt returns when the newest event at or before position was
// recorded; when there is none, when the oldest event was; and the zero
// time in an empty store. A processor's lag in seconds is the recorded
// time of the head's event minus that of the processor's position (see
// package runner): a processor that has handled nothing yet is as far
// behind as the store is old.
func (s *Store) RecordedAt(ctx context.Context, position int64) (time.Time, error) {
	at := s.q.t.events + " WHERE position <= " + s.q.p(1) + " ORDER BY position DESC"
	for _, q := range []string{at, s.q.t.events + " WHERE position > " + s.q.p(1) + " ORDER BY position"} {
		var tv timeValue
		err := s.db.QueryRowContext(ctx, "SELECT recorded_at FROM "+q+" LIMIT 1", position).Scan(&tv)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return time.Time{}, fail("recorded at", "", "", err)
		}
		return tv.t, nil
	}
	return time.Time{}, nil
}
