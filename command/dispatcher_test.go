package command_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/command"
)

type Ping struct{ N int }

type Unrouted struct{}

func TestDispatch(t *testing.T) {
	d := command.NewDispatcher()
	var got []Ping
	if err := command.Handle(d, func(ctx context.Context, c Ping) (command.Result, error) {
		got = append(got, c)
		if c.N < 0 {
			return command.Result{}, errNegative
		}
		return command.Result{Position: int64(c.N)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if res, err := d.Dispatch(ctx, Ping{N: 1}); err != nil || res.Position != 1 {
		t.Errorf("Dispatch(Ping) = %+v, %v; want position 1", res, err)
	}
	if res, err := d.Dispatch(ctx, &Ping{N: 2}); err != nil || res.Position != 2 {
		t.Errorf("Dispatch(*Ping) = %+v, %v; want position 2", res, err)
	}
	if _, err := d.Dispatch(ctx, Ping{N: -1}); !errors.Is(err, errNegative) {
		t.Errorf("Dispatch(Ping{-1}) = %v, want the handler's error", err)
	}
	if len(got) != 3 || got[0].N != 1 || got[1].N != 2 {
		t.Errorf("handled %v, want Ping 1, 2, -1", got)
	}

	_, err := d.Dispatch(ctx, Unrouted{})
	if !errors.Is(err, command.ErrNoHandler) || !strings.Contains(err.Error(), "command_test.Unrouted") {
		t.Errorf("Dispatch(Unrouted) = %v, want ErrNoHandler naming the type", err)
	}
	if _, err := d.Dispatch(ctx, nil); !errors.Is(err, command.ErrNoHandler) {
		t.Errorf("Dispatch(nil) = %v, want ErrNoHandler", err)
	}
	if _, err := d.Dispatch(ctx, (*Ping)(nil)); err == nil {
		t.Error("Dispatch((*Ping)(nil)) = nil error")
	}

	if err := command.Handle(d, func(context.Context, Ping) (command.Result, error) { return command.Result{}, nil }); err == nil {
		t.Error("second Handle[Ping] = nil error, want a duplicate registration error")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second MustHandle[Ping] did not panic")
			}
		}()
		command.MustHandle(d, func(context.Context, Ping) (command.Result, error) { return command.Result{}, nil })
	}()
	if err := command.Handle[Unrouted](d, nil); err == nil {
		t.Error("Handle with a nil function = nil error")
	}
	if err := command.Handle(d, func(context.Context, any) (command.Result, error) { return command.Result{}, nil }); err == nil {
		t.Error("Handle[any] = nil error")
	}
}

// TestZeroDispatcher uses a Dispatcher that was declared, not made.
func TestZeroDispatcher(t *testing.T) {
	var d command.Dispatcher
	if _, err := d.Dispatch(t.Context(), Ping{}); !errors.Is(err, command.ErrNoHandler) {
		t.Errorf("Dispatch on a zero Dispatcher = %v, want ErrNoHandler", err)
	}
	d.Use(command.Validation())
	command.MustHandle(&d, func(_ context.Context, c Ping) (command.Result, error) {
		return command.Result{Position: 3}, nil
	})
	if res, err := d.Dispatch(t.Context(), Ping{}); err != nil || res.Position != 3 {
		t.Errorf("Dispatch = %+v, %v; want position 3", res, err)
	}
	if err := command.Handle[Ping](nil, func(context.Context, Ping) (command.Result, error) { return command.Result{}, nil }); err == nil {
		t.Error("Handle on a nil *Dispatcher = nil error")
	}
}

func TestMiddlewareOrder(t *testing.T) {
	d := command.NewDispatcher()
	var trace []string
	mw := func(name string) command.Middleware {
		return func(next command.Handler) command.Handler {
			return command.HandlerFunc(func(ctx context.Context, cmd any) (command.Result, error) {
				trace = append(trace, name+">")
				res, err := next.Handle(ctx, cmd)
				trace = append(trace, "<"+name)
				return res, err
			})
		}
	}
	d.Use(mw("a"), mw("b"))
	command.MustHandle(d, func(context.Context, Ping) (command.Result, error) {
		trace = append(trace, "handler")
		return command.Result{Position: 7}, nil
	})
	d.Use(mw("c")) // added after the handler: still wraps it
	if res, err := d.Dispatch(t.Context(), Ping{}); err != nil || res.Position != 7 {
		t.Fatalf("Dispatch = %+v, %v; want position 7 through the middleware", res, err)
	}
	if got, want := strings.Join(trace, " "), "a> b> c> handler <c <b <a"; got != want {
		t.Errorf("trace %q, want %q", got, want)
	}
}

func TestValidation(t *testing.T) {
	d := command.NewDispatcher()
	d.Use(command.Validation())
	handled := 0
	command.MustHandle(d, func(context.Context, Increment) (command.Result, error) { handled++; return command.Result{}, nil })
	command.MustHandle(d, func(context.Context, Ping) (command.Result, error) { handled++; return command.Result{}, nil })

	_, err := d.Dispatch(t.Context(), Increment{})
	if !errors.Is(err, command.ErrInvalid) {
		t.Fatalf("Dispatch(invalid) = %v, want ErrInvalid", err)
	}
	for _, s := range []string{"command_test.Increment", "ID is empty", "By is zero"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if _, err := d.Dispatch(t.Context(), &Increment{}); !errors.Is(err, command.ErrInvalid) {
		t.Errorf("Dispatch(&invalid) = %v, want ErrInvalid", err)
	}
	if handled != 0 {
		t.Errorf("an invalid command was handled")
	}
	if _, err := d.Dispatch(t.Context(), Increment{ID: "1", By: 1}); err != nil {
		t.Errorf("Dispatch(valid) = %v", err)
	}
	if _, err := d.Dispatch(t.Context(), Ping{}); err != nil { // no Validate method
		t.Errorf("Dispatch(Ping) = %v", err)
	}
	if handled != 2 {
		t.Errorf("handled %d commands, want 2", handled)
	}
}

func TestCorrelationMiddleware(t *testing.T) {
	d := command.NewDispatcher()
	n := 0
	d.Use(command.Correlation(func() string { n++; return "cmd-" + string(rune('0'+n)) }))
	type ids struct{ id, corr string }
	var seen []ids
	command.MustHandle(d, func(ctx context.Context, c Ping) (command.Result, error) {
		id, _ := command.IDFromContext(ctx)
		corr, _ := command.CorrelationIDFromContext(ctx)
		seen = append(seen, ids{id, corr})
		if c.N > 0 { // a command dispatching another: same conversation
			return d.Dispatch(ctx, Ping{N: c.N - 1})
		}
		return command.Result{}, nil
	})
	ctx := t.Context()
	if _, err := d.Dispatch(ctx, Ping{N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Dispatch(command.WithCorrelationID(ctx, "request-9"), Ping{}); err != nil {
		t.Fatal(err)
	}
	want := []ids{{"cmd-1", "cmd-1"}, {"cmd-2", "cmd-1"}, {"cmd-3", "request-9"}}
	if len(seen) != len(want) {
		t.Fatalf("seen %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("command %d: id, correlation = %v, want %v", i, seen[i], want[i])
		}
	}
	if _, ok := command.IDFromContext(ctx); ok {
		t.Error("IDFromContext(plain ctx) ok")
	}
	if opts := command.AppendOptions(ctx); opts != nil {
		t.Errorf("AppendOptions(plain ctx) = %d options, want none", len(opts))
	}
}

func TestLogging(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "duration" {
			return slog.Attr{}
		}
		return a
	}}))
	d := command.NewDispatcher()
	d.Use(command.Correlation(func() string { return "c1" }), command.Logging(logger))
	command.MustHandle(d, func(_ context.Context, c Ping) (command.Result, error) {
		if c.N < 0 {
			return command.Result{}, errNegative
		}
		return command.Result{Position: int64(c.N)}, nil
	})
	d.Dispatch(t.Context(), Ping{})
	d.Dispatch(t.Context(), Ping{N: 12})
	d.Dispatch(t.Context(), Ping{N: -1})
	want := `level=INFO msg="command handled" command=command_test.Ping command_id=c1 correlation_id=c1
level=INFO msg="command handled" command=command_test.Ping command_id=c1 correlation_id=c1 position=12
level=ERROR msg="command failed" command=command_test.Ping command_id=c1 correlation_id=c1 error="negative increment"
`
	if got := buf.String(); got != want {
		t.Errorf("logs:\n%s\nwant:\n%s", got, want)
	}
}
