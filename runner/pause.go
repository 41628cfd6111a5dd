package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrUnknownProcessor reports a name that is not one of the runner's
// processors.
var ErrUnknownProcessor = errors.New("runner: no such processor")

// pauser is a processor that can be paused: *processing.Processor, and
// the projectors and reactors that embed one.
type pauser interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// Pause pauses the named processor, in this process and in every process
// that shares its store (see processing.Processor.Pause): when it runs
// here, Pause returns once it has stopped handling events. A paused
// processor keeps its lease and its place: it handles nothing until
// [Runner.Resume], and then goes on from its saved position. Its status
// shows the state [Paused]. Pause fails with [ErrUnknownProcessor] for a
// name that is none of the runner's processors.
func (r *Runner) Pause(ctx context.Context, name string) error {
	p, err := r.pauser("pause", name)
	if err != nil {
		return err
	}
	return p.Pause(ctx)
}

// Resume undoes [Runner.Pause].
func (r *Runner) Resume(ctx context.Context, name string) error {
	p, err := r.pauser("resume", name)
	if err != nil {
		return err
	}
	return p.Resume(ctx)
}

func (r *Runner) pauser(op, name string) (pauser, error) {
	for _, pr := range r.procs {
		if pr.p.Name() != name {
			continue
		}
		p, ok := pr.p.(pauser)
		if !ok {
			return nil, fmt.Errorf("runner: %s %s: %T cannot be paused", op, name, pr.p)
		}
		return p, nil
	}
	return nil, fmt.Errorf("runner: %s %q: %w", op, name, ErrUnknownProcessor)
}

// serveControl pauses or resumes the processor named by the end of the
// request's path, .../<name>/pause or .../<name>/resume, and answers its
// status.
func (r *Runner) serveControl(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimSuffix(req.URL.EscapedPath(), "/")
	i := strings.LastIndexByte(path, '/')
	j := strings.LastIndexByte(path[:max(i, 0)], '/')
	notControl := func() {
		// Any other POST: the status itself takes none.
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed (POST …/<processor>/pause or …/<processor>/resume)", http.StatusMethodNotAllowed)
	}
	if i < 0 || j < 0 {
		notControl()
		return
	}
	var do func(context.Context, string) error
	switch path[i+1:] {
	case "pause":
		do = r.Pause
	case "resume":
		do = r.Resume
	default:
		notControl()
		return
	}
	name, err := url.PathUnescape(path[j+1 : i])
	if err != nil {
		http.Error(w, "bad processor name: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := do(req.Context(), name); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownProcessor) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	var status *ProcessorStatus
	for _, ps := range r.Status(req.Context()).Processors {
		if ps.Name == name {
			status = &ps
			break
		}
	}
	body, err := json.MarshalIndent(status, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}
