package web_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/examples/todo/internal/web"
)

// positioned is a fake dispatcher whose commands all write at one position.
type positioned int64

func (p positioned) Dispatch(ctx context.Context, cmd any) (command.Result, error) {
	return command.Result{Position: int64(p)}, nil
}

func TestPositionHeader(t *testing.T) {
	h := web.NewHandler(positioned(42), nil, web.Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/todo/"+id, strings.NewReader(`{"title":"x"}`)))
	if rec.Code != 201 || rec.Header().Get(web.PositionHeader) != "42" {
		t.Errorf("answer = %d with %s %q, want 201 and 42", rec.Code, web.PositionHeader, rec.Header().Get(web.PositionHeader))
	}
}

// A Cairn-After that is not a position is a bad request (the app's tests
// cover the waits, on real databases).
func TestBadAfterHeader(t *testing.T) {
	h := web.NewHandler(positioned(1), nil, web.Options{})
	for _, after := range []string{"x", "-3", "1e3"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/todos/outstanding", nil)
		req.Header.Set(web.AfterHeader, after)
		h.ServeHTTP(rec, req)
		if rec.Code != 400 || rec.Body.String() != "Bad Request: Cairn-After is invalid" {
			t.Errorf("Cairn-After %q: %d %q, want 400", after, rec.Code, rec.Body)
		}
	}
}
