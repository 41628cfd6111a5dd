package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/examples/todo/internal/web"
)

// dispatcher is a fake command dispatcher that records the commands and
// answers with err.
type dispatcher struct {
	commands []any
	err      error
}

func (d *dispatcher) Dispatch(ctx context.Context, cmd any) (command.Result, error) {
	d.commands = append(d.commands, cmd)
	return command.Result{}, d.err
}

const id = "6f1d7e2a-1111-4c1e-9a6b-123456789abc"

// TestErrorAnswers checks the answers to what the command side returns; the
// app's own tests cover them end to end, except those that are hard to
// provoke there.
func TestErrorAnswers(t *testing.T) {
	conflict := fmt.Errorf("command: gave up after 5 attempts: aggregate: save: %w",
		&event.VersionConflictError{StreamID: todo.StreamID(id), Expected: event.Exact(1), Actual: 2})
	tests := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"success", nil, 200, ""},
		{"a conflict that outlasted the retries", conflict, 409, `Conflict: Todo "` + id + `" was changed by other requests at the same time, try again`},
		{"a rejection", &todo.RejectedError{ID: id, Reason: todo.ErrAlreadyComplete}, 422, `Unprocessable Entity: Todo "` + id + `" already complete`},
		{"a failure of the server", errors.New("database is down"), 500, "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &dispatcher{err: tt.err}
			h := web.NewHandler(d, nil, web.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			req := httptest.NewRequest("POST", "/todo/"+strings.ToUpper(id)+"/complete", strings.NewReader(`{"completed_on":"2017-06-13"}`))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.status || string(body) != tt.body || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("answer = %d %q (%s), want %d %q (application/json)", rec.Code, body, rec.Header().Get("Content-Type"), tt.status, tt.body)
			}
			want := todo.Complete{ID: id, CompletedOn: todo.Text("2017-06-13")}
			if len(d.commands) != 1 || d.commands[0] != any(want) {
				t.Errorf("dispatched %#v, want %#v", d.commands, want)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	h := web.NewHandler(&dispatcher{}, nil, web.Options{})
	body := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/todo/"+id, strings.NewReader(body)))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("answer = %d %q, want 413", rec.Code, rec.Body)
	}
}
