package command_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/spantest"
	"github.com/cairnhq/cairn/internal/testdb"
)

// A traced command's span is the parent of the aggregate's load and save,
// which is the parent of the append; the stored events carry the trace.
func TestTracingCommand(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		rec := spantest.New(t)
		db := testdb.New(t, kind)
		reg := event.NewRegistry(event.RegistryOptions{})
		event.MustRegister[Incremented](reg, "counter.incremented")
		store, err := eventstore.New(db.Gorm, reg, eventstore.Options{TracerProvider: rec})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		repo, err := aggregate.NewRepository[Counter](store, "counter", aggregate.Options{TracerProvider: rec})
		if err != nil {
			t.Fatal(err)
		}
		var d command.Dispatcher
		d.Use(command.Correlation(func() string { return "cmd-1" }), command.Tracing(rec))
		command.MustHandle(&d, func(ctx context.Context, c Increment) (command.Result, error) {
			return command.Execute(ctx, repo, c.ID, func(n *Counter) error { return n.Increment(c.By) }, command.ExecuteOptions{})
		})
		res, err := d.Dispatch(t.Context(), Increment{ID: "a", By: 2})
		if err != nil {
			t.Fatal(err)
		}

		cmd := rec.One(t, "cairn.command", nil)
		if a := spantest.Attrs(cmd); a["cairn.command.type"] != "command_test.Increment" || a["cairn.command.id"] != "cmd-1" ||
			a["cairn.command.correlation_id"] != "cmd-1" || a["cairn.command.events"] != "1" || a["cairn.command.position"] != fmt.Sprint(res.Position) {
			t.Errorf("command span attributes = %v", a)
		}
		load := rec.One(t, "cairn.aggregate.load", nil)
		save := rec.One(t, "cairn.aggregate.save", nil)
		for _, s := range []sdktrace.ReadOnlySpan{load, save} {
			a := spantest.Attrs(s)
			if s.Parent().SpanID() != cmd.SpanContext().SpanID() || a["cairn.aggregate.type"] != "counter" || a["cairn.aggregate.id"] != "a" || a["cairn.stream"] != "counter-a" {
				t.Errorf("%s: want a child of the command span with the aggregate; attributes %v", s.Name(), a)
			}
		}
		if got := spantest.Attrs(load)["cairn.aggregate.version"]; got != "0" {
			t.Errorf("load span version = %q, want 0", got)
		}
		if a := spantest.Attrs(save); a["cairn.aggregate.version"] != "1" || a["cairn.aggregate.changes"] != "1" {
			t.Errorf("save span attributes = %v, want version 1 and 1 change", a)
		}
		app := rec.One(t, "cairn.append", nil)
		if app.Parent().SpanID() != save.SpanContext().SpanID() {
			t.Errorf("append span: want a child of the save span")
		}
		want := fmt.Sprintf("00-%s-%s-01", cmd.SpanContext().TraceID(), app.SpanContext().SpanID())
		if got := res.Events[0].Metadata["traceparent"]; got != want {
			t.Errorf("traceparent = %q, want %q", got, want)
		}

		// A failing command's span records its error.
		if _, err := d.Dispatch(t.Context(), Increment{ID: "a", By: -1}); err == nil {
			t.Fatal("a negative increment succeeded")
		}
		failed := rec.Named("cairn.command")
		if len(failed) != 2 || failed[1].Status().Description != errNegative.Error() || len(failed[1].Events()) == 0 {
			t.Errorf("failed command span: status %+v, events %v", failed[1].Status(), failed[1].Events())
		}
	})
}

// Tracing wraps each command in a span; with Correlation before it, the
// span has the command's IDs. Here an in-memory exporter stands for the
// OpenTelemetry SDK's real ones.
func ExampleTracing() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	_, counters := openCounters()

	var d command.Dispatcher
	d.Use(command.Correlation(nil), command.Tracing(tp))
	command.MustHandle(&d, func(ctx context.Context, c Increment) (command.Result, error) {
		return command.Execute(ctx, counters, c.ID, func(n *Counter) error { return n.Increment(c.By) }, command.ExecuteOptions{})
	})
	if _, err := d.Dispatch(context.Background(), Increment{ID: "a", By: 1}); err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range exp.GetSpans() {
		var keys []string
		for _, kv := range s.Attributes {
			keys = append(keys, string(kv.Key))
		}
		slices.Sort(keys)
		fmt.Println(s.Name, keys)
	}
	// Output:
	// cairn.command [cairn.command.correlation_id cairn.command.events cairn.command.id cairn.command.position cairn.command.type]
}
