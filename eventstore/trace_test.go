package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/sqlitedb"
	"github.com/cairnhq/cairn/internal/spantest"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

// readOne reads the one event of stream.
func readOne(t *testing.T, s *eventstore.Store, stream string) event.Event {
	t.Helper()
	got, err := s.ReadEvent(t.Context(), stream, 1)
	if err != nil {
		t.Fatalf("ReadEvent(%q, 1) = %v", stream, err)
	}
	return got
}

// An append in a traced context has a span, child of the caller's, and its
// events carry the span's context in their metadata as W3C traceparent.
func TestAppendSpanAndTraceparent(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		rec := spantest.New(t)
		_, s := setup(t, kind, eventstore.Options{TracerProvider: rec})
		ctx, parent := rec.Tracer("test").Start(t.Context(), "request")
		recorded, err := s.Append(ctx, "traced-1", event.NoStream, []any{testkit.Noted{Text: "a"}, testkit.Noted{Text: "b"}},
			event.WithMetadata(map[string]string{"user": "ann"}))
		parent.End()
		if err != nil {
			t.Fatal(err)
		}

		spans := rec.Named("cairn.append")
		if len(spans) != 1 {
			t.Fatalf("%d cairn.append spans, want 1", len(spans))
		}
		sp := spans[0]
		if sp.Parent().SpanID() != parent.SpanContext().SpanID() || sp.SpanKind() != trace.SpanKindProducer {
			t.Errorf("append span: parent %v kind %v, want %v producer", sp.Parent().SpanID(), sp.SpanKind(), parent.SpanContext().SpanID())
		}
		attrs := spantest.Attrs(sp)
		for k, want := range map[string]string{
			"cairn.stream": "traced-1", "cairn.append.events": "2", "cairn.append.expected_version": event.NoStream.String(),
			"cairn.append.batch.appends": "1", "cairn.append.batch.events": "2", "cairn.append.batch.leader": "true",
			"cairn.append.position": fmt.Sprint(recorded[1].Position),
		} {
			if attrs[k] != want {
				t.Errorf("append span attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
			}
		}
		if _, ok := spantest.Attr(sp, "cairn.append.queued"); !ok {
			t.Errorf("append span has no cairn.append.queued: %v", attrs)
		}
		commits := rec.Named("cairn.append.commit")
		if len(commits) != 1 || commits[0].Parent().SpanID() != sp.SpanContext().SpanID() ||
			!spantest.LinksTo(commits[0], sp.SpanContext()) || !spantest.LinksTo(sp, commits[0].SpanContext()) {
			t.Errorf("want one cairn.append.commit span, child of the append span, linked to and from it; got %d", len(commits))
		}

		want := fmt.Sprintf("00-%s-%s-01", sp.SpanContext().TraceID(), sp.SpanContext().SpanID())
		for i, e := range recorded {
			if e.Metadata["traceparent"] != want || e.Metadata["user"] != "ann" {
				t.Errorf("recorded event %d metadata = %v, want traceparent %s and user ann", i, e.Metadata, want)
			}
		}
		if got := readOne(t, s, "traced-1"); got.Metadata["traceparent"] != want || len(got.Metadata) != 2 {
			t.Errorf("stored metadata = %v, want traceparent %s and user", got.Metadata, want)
		}
	})
}

// A traceparent the append gives is kept, trace state travels with it, and
// an append without a valid span context stores no trace metadata.
func TestTraceparentKeptOrAbsent(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		_, s := setup(t, kind, eventstore.Options{TracerProvider: noop.NewTracerProvider()})
		given := map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "congo=t61rcWkgMzE"}
		testkit.MustAppend(t, s, "given", event.NoStream, []any{testkit.Noted{}}, event.WithMetadata(given))
		if got := readOne(t, s, "given").Metadata; got["traceparent"] != given["traceparent"] || got["tracestate"] != given["tracestate"] {
			t.Errorf("metadata = %v, want the given %v", got, given)
		}

		// A remote span context in ctx, as an HTTP server's propagator
		// leaves it: the no-op tracer's span carries it, and it is stored.
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
		})
		state, err := trace.ParseTraceState("rojo=00f067aa0ba902b7")
		if err != nil {
			t.Fatal(err)
		}
		sc = sc.WithTraceState(state)
		ctx := trace.ContextWithRemoteSpanContext(t.Context(), sc)
		if _, err := s.Append(ctx, "remote", event.NoStream, []any{testkit.Noted{}}); err != nil {
			t.Fatal(err)
		}
		got := readOne(t, s, "remote").Metadata
		if want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); got["traceparent"] != want || got["tracestate"] != "rojo=00f067aa0ba902b7" {
			t.Errorf("metadata = %v, want traceparent %s and its trace state", got, want)
		}

		testkit.MustAppend(t, s, "untraced", event.NoStream, []any{testkit.Noted{}})
		if got := readOne(t, s, "untraced").Metadata; got != nil {
			t.Errorf("metadata of an untraced append = %v, want none", got)
		}
	})
}

// Concurrent appends share group commits: every append span names the
// batch it joined, which its link leads to, and each commit span links to
// the append spans it committed.
func TestAppendSpansOfGroupCommits(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		rec := spantest.New(t)
		_, s := setup(t, kind, eventstore.Options{TracerProvider: rec})
		const writers = 16
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				ctx, parent := rec.Tracer("test").Start(t.Context(), "request")
				defer parent.End()
				if _, err := s.Append(ctx, fmt.Sprintf("group-%d", i), event.NoStream, []any{testkit.Noted{}}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		commits := map[trace.SpanID]map[string]string{}
		for _, c := range rec.Named("cairn.append.commit") {
			commits[c.SpanContext().SpanID()] = spantest.Attrs(c)
		}
		appends := rec.Named("cairn.append")
		if len(appends) != writers {
			t.Fatalf("%d append spans, want %d", len(appends), writers)
		}
		for _, a := range appends {
			attrs := spantest.Attrs(a)
			var commit map[string]string
			for _, l := range a.Links() {
				if c, ok := commits[l.SpanContext.SpanID()]; ok {
					commit = c
				}
			}
			if commit == nil {
				t.Errorf("append span %v links to no commit span", attrs)
				continue
			}
			if attrs["cairn.append.batch.appends"] != commit["cairn.append.batch.appends"] || attrs["cairn.append.batch.events"] != commit["cairn.append.batch.events"] {
				t.Errorf("append span says batch of %s appends, %s events; its commit %v", attrs["cairn.append.batch.appends"], attrs["cairn.append.batch.events"], commit)
			}
		}
		linked := 0
		for _, c := range rec.Named("cairn.append.commit") {
			linked += len(c.Links())
		}
		if linked != writers {
			t.Errorf("commit spans link to %d append spans, want %d", linked, writers)
		}
	})
}

// The store makes no span of its own outside a recorded span: an append
// without one, with a tracer provider set, has no span and stores no trace
// context.
func TestNoAppendSpanOutsideATrace(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		rec := spantest.New(t)
		_, s := setup(t, kind, eventstore.Options{TracerProvider: rec})
		testkit.MustAppend(t, s, "alone", event.NoStream, []any{testkit.Noted{}})
		if got := rec.Ended(); len(got) != 0 {
			t.Errorf("%d spans, want none", len(got))
		}
		if got := readOne(t, s, "alone").Metadata; got != nil {
			t.Errorf("metadata = %v, want none", got)
		}
	})
}

// AppendTx has a span too, marked as in a transaction, that links to the
// trace context its appends carry already.
func TestAppendTxSpan(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		rec := spantest.New(t)
		_, s := setup(t, kind, eventstore.Options{TracerProvider: rec})
		_, cause := rec.Tracer("test").Start(t.Context(), "cause")
		cause.End()
		carried := map[string]string{}
		w3cInject(trace.ContextWithSpan(t.Context(), cause), carried)

		ctx, parent := rec.Tracer("test").Start(t.Context(), "batch")
		err := s.Transaction(ctx, func(tx *gorm.DB) error {
			_, err := s.AppendAllTx(ctx, tx, []event.AppendRequest{
				{StreamID: "tx-1", Expected: event.NoStream, Events: []any{testkit.Noted{}}, Options: []event.AppendOption{event.WithMetadata(carried)}},
				{StreamID: "tx-2", Expected: event.NoStream, Events: []any{testkit.Noted{}, testkit.Noted{}}},
			})
			return err
		})
		parent.End()
		if err != nil {
			t.Fatal(err)
		}
		spans := rec.Named("cairn.append")
		if len(spans) != 1 {
			t.Fatalf("%d append spans, want 1", len(spans))
		}
		sp := spans[0]
		attrs := spantest.Attrs(sp)
		if attrs["cairn.append.in_transaction"] != "true" || attrs["cairn.append.appends"] != "2" || attrs["cairn.append.events"] != "3" {
			t.Errorf("AppendAllTx span attributes = %v", attrs)
		}
		if !spantest.LinksTo(sp, cause.SpanContext()) || len(sp.Links()) != 1 {
			t.Errorf("AppendAllTx span links = %v, want one to the carried context", sp.Links())
		}
		if got := readOne(t, s, "tx-1").Metadata["traceparent"]; got != carried["traceparent"] {
			t.Errorf("tx-1 traceparent = %q, want the carried %q", got, carried["traceparent"])
		}
		want := fmt.Sprintf("00-%s-%s-01", sp.SpanContext().TraceID(), sp.SpanContext().SpanID())
		if got := readOne(t, s, "tx-2").Metadata["traceparent"]; got != want {
			t.Errorf("tx-2 traceparent = %q, want the append span's %q", got, want)
		}
	})
}

// w3cInject writes ctx's span context as a traceparent, by hand, as a
// client without OpenTelemetry would.
func w3cInject(ctx context.Context, m map[string]string) {
	sc := trace.SpanContextFromContext(ctx)
	m["traceparent"] = fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// BenchmarkAppendTracing is BenchmarkAppendOne with an explicit no-op
// tracer provider, and with the SDK recording every span (no exporter),
// each append in a recorded request span: what tracing costs an append
// when it is on.
func BenchmarkAppendTracing(b *testing.B) {
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"noop", noop.NewTracerProvider()},
		{"recording", spantest.New(b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := testdb.NewSQLite(b, sqlitedb.Options{Synchronous: sqlitedb.Normal})
			s := testkit.MigratedStore(b, db.Gorm, testkit.NewRegistry(), eventstore.Options{TracerProvider: tc.tp})
			data := []any{testkit.Noted{Text: "hello"}}
			ctx, parent := tc.tp.Tracer("bench").Start(b.Context(), "request")
			defer parent.End()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Append(ctx, fmt.Sprint("bench-", i%100), event.Any, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
