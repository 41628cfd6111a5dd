// Package web is the todo app's HTTP API: the four commands, sent through a
// command dispatcher, and the three queries, read from the projections, with
// the paths, status codes and messages of EventSourcery's todo app. It also
// serves a page at / to drive them from a browser, a todo's history and the
// processors' positions.
//
// Read-your-writes: a command's answer carries the global position of the
// event it wrote in the header Cairn-Position; a query sent with the header
// Cairn-After: <position> waits, for at most Options.WaitTimeout, until the
// projections it reads have passed that position. If they do not in time,
// or one of them cannot (it stopped after an error, or was paused), it
// answers with what they have and the header Cairn-Stale: true.
//
// Every answer but the page's has the Content-Type application/json. A
// command answers 201 (add) or 200 with an empty body; a bad request 400
// "Bad Request: <message>"; a command the todo's state does not allow 422
// "Unprocessable Entity: <message>"; a concurrency conflict that persisted
// through the retries 409 "Conflict: <message>".
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
)

// Dispatcher sends commands to their handlers. *command.Dispatcher
// implements it.
type Dispatcher interface {
	Dispatch(ctx context.Context, cmd any) (command.Result, error)
}

// Options configures the handler. The zero value works.
type Options struct {
	// Processors, if set, is served at GET /processors: the status of the
	// processors running in this process; POST /processors/{name}/pause
	// and /processors/{name}/resume pause and resume one (a runner's
	// Handler).
	Processors http.Handler
	// Logger receives the failures of queries; nil means slog.Default().
	// (Those of commands are logged by the dispatcher's middleware.)
	Logger *slog.Logger
	// Store, if set, is the event store: queries sent with Cairn-After
	// wait through it for their projections, and it serves a todo's
	// history and the processors' positions (see ryw.go and history.go).
	Store Store
	// WaitTimeout bounds a query's wait for its projections; zero means
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// maxBodyBytes bounds a command's body.
const maxBodyBytes = 1 << 20

//go:embed static/index.html
var static embed.FS

// NewHandler returns the HTTP handler of the API: commands go to commands,
// queries read the projections in db.
func NewHandler(commands Dispatcher, db *gorm.DB, opts Options) http.Handler {
	s := &server{commands: commands, db: db, logger: opts.Logger, store: opts.Store, waitTimeout: opts.WaitTimeout}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.waitTimeout <= 0 {
		s.waitTimeout = DefaultWaitTimeout
	}
	mux := http.NewServeMux()

	mux.HandleFunc("POST /todo/{id}", s.command(addTodo, http.StatusCreated))
	mux.HandleFunc("PUT /todo/{id}", s.command(amendTodo, http.StatusOK))
	mux.HandleFunc("POST /todo/{id}/complete", s.command(completeTodo, http.StatusOK))
	mux.HandleFunc("POST /todo/{id}/abandon", s.command(abandonTodo, http.StatusOK))

	// Each query names the projections it reads, which it waits for when
	// the request has a Cairn-After header.
	mux.HandleFunc("GET /todos/outstanding", query(s, projections.Outstanding, projections.OutstandingName))
	mux.HandleFunc("GET /todos/scheduled", query(s, projections.Scheduled, projections.ScheduledName))
	mux.HandleFunc("GET /todos/completed", query(s, projections.Completed, projections.CompletedName))
	mux.HandleFunc("GET /todo/{id}/history", s.history)
	mux.HandleFunc("GET /positions", s.positions)

	if opts.Processors != nil {
		mux.Handle("GET /processors", opts.Processors)
		mux.Handle("POST /processors/{name}/{action}", opts.Processors)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "static/index.html")
	})

	// The known paths with another method, and every other path, answer in
	// JSON too (ServeMux's own answers are text/plain).
	for _, p := range []string{"/todo/{id}", "/todo/{id}/complete", "/todo/{id}/abandon", "/todos/outstanding", "/todos/scheduled", "/todos/completed", "/todo/{id}/history", "/positions"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			reply(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, "Not Found")
	})
	return mux
}

type server struct {
	commands    Dispatcher
	db          *gorm.DB
	logger      *slog.Logger
	store       Store // nil: no waits, history or positions
	waitTimeout time.Duration
}

// body is a command's JSON body: the value of each key sent.
type body map[string]json.RawMessage

// fields reads the fields of a body, keeping the first error.
type fields struct {
	body body
	err  error
}

// get returns the value sent for key: absent when the key was not sent,
// null, or a string. Any other JSON value is an error, "<key> is invalid".
func (fs *fields) get(key string) todo.Field {
	var f todo.Field
	if raw, ok := fs.body[key]; ok && fs.err == nil {
		if err := json.Unmarshal(raw, &f); err != nil {
			fs.err = &todo.FieldError{Field: key, Problem: todo.Invalid}
		}
	}
	return f
}

// The commands, made from the todo ID of the path and the body.

func addTodo(id string, b body) (any, error) {
	fs := fields{body: b}
	c := todo.Add{
		ID:               id,
		Title:            fs.get("title"),
		Description:      fs.get("description"),
		DueDate:          fs.get("due_date"),
		StakeholderEmail: fs.get("stakeholder_email"),
	}
	return c, fs.err
}

func amendTodo(id string, b body) (any, error) {
	fs := fields{body: b}
	c := todo.Amend{
		ID:               id,
		Title:            fs.get("title"),
		Description:      fs.get("description"),
		DueDate:          fs.get("due_date"),
		StakeholderEmail: fs.get("stakeholder_email"),
	}
	return c, fs.err
}

func completeTodo(id string, b body) (any, error) {
	fs := fields{body: b}
	c := todo.Complete{ID: id, CompletedOn: fs.get("completed_on")}
	return c, fs.err
}

func abandonTodo(id string, b body) (any, error) {
	fs := fields{body: b}
	c := todo.Abandon{ID: id, AbandonedOn: fs.get("abandoned_on")}
	return c, fs.err
}

// command returns the handler of a command endpoint: it reads the body,
// makes the command, dispatches it and answers success with an empty body.
func (s *server) command(newCommand func(id string, b body) (any, error), success int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// IDs are case-insensitive; the canonical form is lower case.
		id := strings.ToLower(r.PathValue("id"))
		// The command's Validate checks the ID too; checking it first here
		// makes it the first problem reported, before the body's.
		if !todo.ValidID(id) {
			s.fail(w, r, id, &todo.FieldError{Field: "todo_id", Problem: todo.Invalid})
			return
		}
		b, err := readBody(w, r)
		if err != nil {
			s.fail(w, r, id, err)
			return
		}
		cmd, err := newCommand(id, b)
		if err != nil {
			s.fail(w, r, id, err)
			return
		}
		ctx := r.Context()
		if c := r.Header.Get("X-Correlation-ID"); c != "" {
			ctx = command.WithCorrelationID(ctx, c)
		}
		res, err := s.commands.Dispatch(ctx, cmd)
		if err != nil {
			s.fail(w, r, id, err)
			return
		}
		setPosition(w, res.Position)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(success)
	}
}

// errNotObject reports a body that is not one JSON object.
var errNotObject = errors.New("body must be a JSON object")

// errTooLarge reports a body over maxBodyBytes.
var errTooLarge = errors.New("body is too large")

func readBody(w http.ResponseWriter, r *http.Request) (body, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errTooLarge
		}
		return nil, errNotObject // the client sent no complete body
	}
	var b body
	// Unmarshal rejects anything but one JSON value; the value must be an
	// object (null would leave b nil).
	if err := json.Unmarshal(data, &b); err != nil || b == nil {
		return nil, errNotObject
	}
	return b, nil
}

// fail answers a command that did not succeed.
func (s *server) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	if fieldErr, ok := errors.AsType[*todo.FieldError](err); ok {
		reply(w, http.StatusBadRequest, "Bad Request: "+fieldErr.Error())
		return
	}
	if rejected, ok := errors.AsType[*todo.RejectedError](err); ok {
		reply(w, http.StatusUnprocessableEntity, "Unprocessable Entity: "+rejected.Error())
		return
	}
	switch {
	case errors.Is(err, errNotObject):
		reply(w, http.StatusBadRequest, "Bad Request: "+err.Error())
	case errors.Is(err, errTooLarge):
		reply(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large: "+err.Error())
	case errors.Is(err, event.ErrVersionConflict):
		// Execute retried the command on conflicts, and gave up.
		reply(w, http.StatusConflict, `Conflict: Todo "`+id+`" was changed by other requests at the same time, try again`)
	case r.Context().Err() != nil:
		// The client went away: nobody reads the answer.
		reply(w, http.StatusServiceUnavailable, "Service Unavailable")
	default:
		// A failure of the server, such as a lost database: the
		// dispatcher's Logging middleware has logged it.
		reply(w, http.StatusInternalServerError, "Internal Server Error")
	}
}

// query returns the handler of a query endpoint: it answers 200 with the
// rows as a JSON array, once the projections it reads have passed the
// position of the request's Cairn-After header, if it has one.
func query[T any](s *server, rows func(context.Context, *gorm.DB) ([]T, error), projections ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.waitAfter(w, r, projections) {
			return
		}
		list, err := rows(r.Context(), s.db)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "query failed", "path", r.URL.Path, "error", err)
			reply(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		data, err := json.Marshal(list)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "query failed", "path", r.URL.Path, "error", err)
			reply(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(append(data, '\n'))
	}
}

// reply answers with a status and a message, in the API's style: plain text
// under a JSON content type, as EventSourcery's todo app does.
func reply(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, message)
}
