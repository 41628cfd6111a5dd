package web

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// The headers of read-your-writes.
const (
	// PositionHeader, on a command's answer, is the global position of
	// the last event the command wrote.
	PositionHeader = "Cairn-Position"
	// AfterHeader, on a query, is a position the projections the query
	// reads must have passed before it answers.
	AfterHeader = "Cairn-After"
	// StaleHeader, "true" on a query's answer, says the projections had
	// not passed the Cairn-After position when it answered.
	StaleHeader = "Cairn-Stale"
)

// DefaultWaitTimeout is the longest a query waits for its projections to
// pass its Cairn-After position, unless Options.WaitTimeout says
// otherwise.
const DefaultWaitTimeout = 2 * time.Second

// Store is what the handler needs of the event store: the processors'
// positions to wait for and to show, the head, and the todos' streams.
// *eventstore.Store implements it.
type Store interface {
	processing.PositionWatcher
	ListPositions(ctx context.Context) ([]eventstore.ProcessorPosition, error)
	Head(ctx context.Context) (int64, error)
	ReadStream(ctx context.Context, streamID string, from int64, limit int) iter.Seq2[event.Event, error]
}

var _ Store = (*eventstore.Store)(nil)

// setPosition puts the position a command wrote in its answer's header.
func setPosition(w http.ResponseWriter, position int64) {
	if position > 0 {
		w.Header().Set(PositionHeader, strconv.FormatInt(position, 10))
	}
}

// waitAfter waits, if the request has a Cairn-After header, until the
// named projections have passed its position, for at most the server's
// wait timeout. If they have not by then, or one cannot get there, it sets
// Cairn-Stale: true on the answer: the query answers with what it has
// either way. It returns false when it has answered the request itself (a
// header that is not a position: 400).
func (s *server) waitAfter(w http.ResponseWriter, r *http.Request, projections []string) bool {
	v := r.Header.Get(AfterHeader)
	if v == "" {
		return true
	}
	after, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || after < 0 {
		reply(w, http.StatusBadRequest, "Bad Request: "+AfterHeader+" is invalid")
		return false
	}
	if s.store == nil {
		w.Header().Set(StaleHeader, "true")
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.waitTimeout)
	defer cancel()
	err = processing.WaitForPositions(ctx, s.store, after, projections...)
	switch {
	case err == nil:
		return true
	case errors.Is(err, processing.ErrBlocked) || ctx.Err() != nil:
		s.logger.DebugContext(r.Context(), "query answers stale", "path", r.URL.Path, "after", after, "reason", err)
	default:
		s.logger.WarnContext(r.Context(), "query cannot wait for its projections; it answers stale", "path", r.URL.Path, "after", after, "error", err)
	}
	w.Header().Set(StaleHeader, "true")
	return true
}
