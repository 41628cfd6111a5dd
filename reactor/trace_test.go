package reactor_test

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/spantest"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/reactor"
)

// The handling of an event belongs to the trace of the append that wrote
// it, the batch that read it links to that trace, and the events a
// reactor emits for it carry the trace on: plain and stateful reactors.
func TestReactorSpansFollowTheEventsTrace(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		for _, stateful := range []bool{false, true} {
			t.Run(fmt.Sprintf("stateful=%v", stateful), func(t *testing.T) {
				rec := spantest.New(t)
				db := testdb.New(t, kind)
				s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TracerProvider: rec})
				opts := reactor.Options{Processing: processing.Options{Logger: testdb.Logger(t), TracerProvider: rec}}
				if stateful {
					opts.State = &reactor.State{}
				}
				r, err := reactor.New(s, "receipts", opts)
				if err != nil {
					t.Fatal(err)
				}
				reactor.MustOn(r, func(ctx context.Context, e event.Event, d testkit.Deposited, emit *reactor.Emitter) error {
					_, err := emit.Emit(ctx, "receipts-"+e.StreamID, testkit.ReceiptIssued(d))
					return err
				})
				if err := r.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}

				ctx, req := rec.Tracer("test").Start(t.Context(), "request")
				dep, err := s.Append(ctx, "acct-1", event.NoStream, []any{testkit.Deposited{Amount: 5}})
				req.End()
				if err != nil {
					t.Fatal(err)
				}
				// An untraced event in the same batch: its handling is the
				// batch span's child.
				untracedStore := testkit.NewStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{TracerProvider: noop.NewTracerProvider()})
				testkit.MustAppend(t, untracedStore, "acct-2", event.NoStream, []any{testkit.Deposited{Amount: 6}})
				runCtx, stop := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- r.Run(runCtx) }()
				if err := r.WaitFor(t.Context(), dep[0].Position+1); err != nil {
					t.Fatal(err)
				}
				stop()
				if err := <-done; err != nil {
					t.Fatal(err)
				}

				appendSpan := rec.One(t, "cairn.append", func(a map[string]string) bool { return a["cairn.stream"] == "acct-1" })
				traceID := req.SpanContext().TraceID()
				batch := rec.One(t, "cairn.process.batch", func(a map[string]string) bool { return a["cairn.batch.events"] == "2" })
				if a := spantest.Attrs(batch); a["cairn.processor"] != "receipts" || a["cairn.processor.kind"] != "reactor" ||
					a["cairn.batch.from"] != "0" || a["cairn.batch.attempt"] != "1" || a["cairn.batch.through"] == "" {
					t.Errorf("batch span attributes = %v", a)
				}
				if !spantest.LinksTo(batch, appendSpan.SpanContext()) || batch.SpanContext().TraceID() == traceID {
					t.Errorf("batch span: want a trace of its own, linked to the append's")
				}
				handled := rec.One(t, "cairn.process.event", func(a map[string]string) bool { return a["cairn.stream"] == "acct-1" })
				if handled.Parent().SpanID() != appendSpan.SpanContext().SpanID() || handled.SpanContext().TraceID() != traceID ||
					!spantest.LinksTo(handled, batch.SpanContext()) || handled.SpanKind() != trace.SpanKindConsumer {
					t.Errorf("event span: want a consumer child of the append span, in the request's trace, linked to its batch")
				}
				if a := spantest.Attrs(handled); a["cairn.event.position"] != fmt.Sprint(dep[0].Position) || a["cairn.event.type"] != testkit.TypeDeposited || a["cairn.event.id"] != dep[0].ID.String() {
					t.Errorf("event span attributes = %v", a)
				}
				untraced := rec.One(t, "cairn.process.event", func(a map[string]string) bool { return a["cairn.stream"] == "acct-2" })
				if untraced.Parent().SpanID() != batch.SpanContext().SpanID() {
					t.Errorf("the untraced event's span: want a child of the batch span")
				}

				receipt, err := s.ReadEvent(t.Context(), "receipts-acct-1", 1)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("00-%s-", traceID)
				if got := receipt.Metadata["traceparent"]; len(got) < len(want) || got[:len(want)] != want {
					t.Fatalf("emitted event traceparent = %q, want one of trace %s", got, traceID)
				}
				emitted := rec.One(t, "cairn.append", func(a map[string]string) bool {
					return a["cairn.stream"] == "receipts-acct-1" || (a["cairn.append.appends"] == "2")
				})
				if stateful {
					// Appended with the batch's transaction, linked to the
					// handling it came from, whose context it carries.
					if emitted.SpanContext().TraceID() != batch.SpanContext().TraceID() || !spantest.LinksTo(emitted, handled.SpanContext()) {
						t.Errorf("stateful emit's append span: want it in the batch's trace, linked to the event's handling")
					}
					if receipt.Metadata["traceparent"] != fmt.Sprintf("00-%s-%s-01", traceID, handled.SpanContext().SpanID()) {
						t.Errorf("emitted traceparent = %q, want the event span's", receipt.Metadata["traceparent"])
					}
				} else if emitted.Parent().SpanID() != handled.SpanContext().SpanID() {
					t.Errorf("emit's append span: want a child of the event span")
				}
			})
		}
	})
}
