package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/cairnhq/cairn/examples/todo/internal/todo"
)

// historyEvent is an event of a todo's stream, as GET /todo/{id}/history
// shows it.
type historyEvent struct {
	Position      int64     `json:"position"`
	Version       int64     `json:"version"`
	Type          string    `json:"type"`
	RecordedAt    time.Time `json:"recorded_at"`
	CorrelationID string    `json:"correlation_id"`
	CausationID   string    `json:"causation_id"`
	Data          any       `json:"data"`
}

// history answers GET /todo/{id}/history: the events of the todo's stream,
// in order, as a JSON array; 404 when the todo has none.
func (s *server) history(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	if !todo.ValidID(id) {
		s.fail(w, r, id, &todo.FieldError{Field: "todo_id", Problem: todo.Invalid})
		return
	}
	events := []historyEvent{}
	if s.store != nil {
		for e, err := range s.store.ReadStream(r.Context(), todo.StreamID(id), 1, 0) {
			if err != nil {
				s.logger.ErrorContext(r.Context(), "history failed", "path", r.URL.Path, "error", err)
				reply(w, http.StatusInternalServerError, "Internal Server Error")
				return
			}
			events = append(events, historyEvent{
				Position:      e.Position,
				Version:       e.Version,
				Type:          e.Type,
				RecordedAt:    e.RecordedAt,
				CorrelationID: e.CorrelationID,
				CausationID:   e.CausationID,
				Data:          e.Data,
			})
		}
	}
	if len(events) == 0 {
		reply(w, http.StatusNotFound, `Not Found: Todo "`+id+`" does not exist`)
		return
	}
	writeJSON(s, w, r, events)
}

// processorJSON is a processor's row, as GET /positions shows it.
type processorJSON struct {
	Name string `json:"name"`
	// State is "failed" (it stopped after an error), "paused", "running"
	// (a live process holds its lease) or "stopped" (none does).
	State     string     `json:"state"`
	Owner     string     `json:"owner"`
	Position  int64      `json:"position"`
	Lag       int64      `json:"lag"`
	LastError *string    `json:"last_error"`
	FailedAt  *time.Time `json:"failed_at"`
}

// positions answers GET /positions: the head and every processor's saved
// position, lag and state, as every process sharing the database sees
// them (so the web process shows the processors of a processors process).
func (s *server) positions(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Head       int64           `json:"head"`
		Processors []processorJSON `json:"processors"`
	}{Processors: []processorJSON{}}
	if s.store != nil {
		// Positions first, then the head: a lag is never negative.
		rows, err := s.store.ListPositions(r.Context())
		if err == nil {
			out.Head, err = s.store.Head(r.Context())
		}
		if err != nil {
			s.logger.ErrorContext(r.Context(), "positions failed", "path", r.URL.Path, "error", err)
			reply(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		for _, p := range rows {
			pj := processorJSON{Name: p.Name, Owner: p.Owner, Position: p.Position, Lag: max(out.Head-p.Position, 0)}
			switch {
			case p.LastError != "":
				pj.State = "failed"
				pj.LastError, pj.FailedAt = &p.LastError, &p.FailedAt
			case p.Paused:
				pj.State = "paused"
			case p.Owner != "":
				pj.State = "running"
			default:
				pj.State = "stopped"
			}
			out.Processors = append(out.Processors, pj)
		}
	}
	writeJSON(s, w, r, out)
}

// writeJSON answers 200 with v in JSON, not to be cached.
func writeJSON(s *server, w http.ResponseWriter, r *http.Request, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "encoding the answer failed", "path", r.URL.Path, "error", err)
		reply(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(append(data, '\n'))
}
