package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/internal/spantest"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestOneTraceFromRequestToReaction runs the app split in two, as the web
// and processors modes do — each part with its own tracer provider and its
// own exporter (in memory), sharing only the database — and follows one
// HTTP command, sent with a caller's W3C traceparent, through one trace:
// the HTTP server span, the command, the aggregate's load and save, the
// append, then, through the trace context the events carry in their
// metadata, a projector's handling of the event (its batch linked to the
// trace), the notifier's reaction, and the event the notifier emitted.
func TestOneTraceFromRequestToReaction(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		webSpans, procSpans := spantest.New(t), spantest.New(t)

		// The web part.
		web, err := newApp(db.Gorm, config{logger: testLogger(t), tracerProvider: webSpans})
		if err != nil {
			t.Fatal(err)
		}
		if err := web.migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(web.handler(nil))
		defer srv.Close()

		// The processors part.
		sender := &recordingSender{}
		procs, err := newApp(db.Gorm, config{logger: testLogger(t), sender: sender, tracerProvider: procSpans})
		if err != nil {
			t.Fatal(err)
		}
		r, err := procs.newRunner()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("processors: %v", err)
			}
		}()

		id := todoID(1)
		must(t, "POST", srv.URL+"/todo/"+id, `{"title":"Traced","stakeholder_email":"ann@example.com"}`, 201)
		// The caller's trace context.
		traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
		callerSpan := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
		req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/todo/"+id+"/complete", strings.NewReader(`{"completed_on":"2017-06-13"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("traceparent", fmt.Sprintf("00-%s-%s-01", traceID, callerSpan))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("complete = %d %s, want 200", res.StatusCode, body)
		}
		var completed int64
		if _, err := fmt.Sscan(res.Header.Get("Cairn-Position"), &completed); err != nil {
			t.Fatalf("Cairn-Position %q: %v", res.Header.Get("Cairn-Position"), err)
		}
		// The notifier's emitted event comes after the completion.
		for _, p := range procs.processors() {
			if err := p.WaitFor(t.Context(), completed+1); err != nil {
				t.Fatal(err)
			}
		}
		if got := sender.notifications(); len(got) != 1 {
			t.Fatalf("notifications %v, want 1", got)
		}

		// The web part's spans: one trace, under the caller's span.
		inTrace := func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() == traceID }
		httpSpan := webSpans.One(t, "POST /todo/{id}/complete", nil)
		if !inTrace(httpSpan) || httpSpan.Parent().SpanID() != callerSpan || httpSpan.SpanKind() != trace.SpanKindServer {
			t.Fatalf("HTTP span: want a server span, child of the caller's span %s; got parent %s in trace %s",
				callerSpan, httpSpan.Parent().SpanID(), httpSpan.SpanContext().TraceID())
		}
		cmd := webSpans.One(t, "cairn.command", func(a map[string]string) bool { return a["cairn.command.type"] == "todo.Complete" })
		save := webSpans.One(t, "cairn.aggregate.save", func(a map[string]string) bool {
			return a["cairn.stream"] == todo.StreamID(id) && a["cairn.aggregate.version"] == "2"
		})
		appendSpan := webSpans.One(t, "cairn.append", func(a map[string]string) bool {
			return a["cairn.stream"] == todo.StreamID(id) && a["cairn.append.position"] == fmt.Sprint(completed)
		})
		for _, link := range []struct{ child, parent sdktrace.ReadOnlySpan }{{cmd, httpSpan}, {save, cmd}, {appendSpan, save}} {
			if !inTrace(link.child) || link.child.Parent().SpanID() != link.parent.SpanContext().SpanID() {
				t.Errorf("%s: want a child of %s in the caller's trace", link.child.Name(), link.parent.Name())
			}
		}

		// The processors part: the projector's handling of the completion
		// and the notifier's reaction are children of the append span.
		handled := func(processor string) sdktrace.ReadOnlySpan {
			t.Helper()
			s := procSpans.One(t, "cairn.process.event", func(a map[string]string) bool {
				return a["cairn.processor"] == processor && a["cairn.event.type"] == todo.CompletedType
			})
			if !inTrace(s) || s.Parent().SpanID() != appendSpan.SpanContext().SpanID() {
				t.Errorf("%s's handling of the completion: want a child of the append span in the caller's trace", processor)
			}
			var batch sdktrace.ReadOnlySpan
			for _, b := range procSpans.Named("cairn.process.batch") {
				if spantest.Attrs(b)["cairn.processor"] == processor && spantest.LinksTo(b, appendSpan.SpanContext()) {
					batch = b
				}
			}
			if batch == nil || !spantest.LinksTo(s, batch.SpanContext()) {
				t.Errorf("%s: want a batch span linked to the append span, and the handling linked to it", processor)
			}
			return s
		}
		handled(projections.CompletedName)
		reaction := handled(notify.Name)

		// The event the notifier emitted carries the reaction's context.
		emitted, err := web.store.ReadEvent(t.Context(), todo.StreamID(id), 3)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("00-%s-%s-01", traceID, reaction.SpanContext().SpanID())
		if emitted.Type != todo.StakeholderNotifiedOfCompletionType || emitted.Metadata["traceparent"] != want {
			t.Errorf("emitted event %s with metadata %v, want %s with traceparent %s", emitted.Type, emitted.Metadata, todo.StakeholderNotifiedOfCompletionType, want)
		}
		procSpans.One(t, "cairn.append", func(a map[string]string) bool { return a["cairn.stream"] == todo.StreamID(id) })
	})
}

// With -trace stdout, the spans are written to standard output as JSON.
func TestSetupTracingStdout(t *testing.T) {
	var out bytes.Buffer
	tp, shutdown, err := setupTracing(t.Context(), traceStdout, "web", &out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(t.Context(), "some-span")
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"Name":"some-span"`) || !strings.Contains(out.String(), "todo web") {
		t.Errorf("stdout = %s, want the span, of service todo web", out.String())
	}
	if tp, _, err := setupTracing(t.Context(), traceOff, "", &out); tp != nil || err != nil {
		t.Errorf("setupTracing off = %v, %v; want nil, nil", tp, err)
	}
}

func TestParseTraceArgs(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, ""},
		{[]string{"-trace", "stdout"}, nil, "stdout"},
		{nil, map[string]string{"TODO_TRACE": "otlp"}, "otlp"},
		{nil, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"},
		{[]string{"-trace", ""}, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ""},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
		if err != nil || got.trace != tt.want {
			t.Errorf("parseArgs(%q) with env %v: trace %q, %v; want %q", tt.args, tt.env, got.trace, err, tt.want)
		}
	}
	if _, err := parseArgs([]string{"-trace", "jaeger"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("parseArgs(-trace jaeger) succeeded, want an error")
	}
}
