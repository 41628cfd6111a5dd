package runner

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/processing"
)

// State is what a processor is doing, as the runner reports it.
type State string

// The states of a processor in a runner.
const (
	// Starting: the runner has not started it yet.
	Starting State = "starting"
	// Standby: another process holds its lease; this one takes over
	// when that one stops or dies.
	Standby State = "standby"
	// CatchingUp: working through the events stored before it started,
	// or far behind the head again.
	CatchingUp State = "catching_up"
	// Live: it has reached the head and follows new events.
	Live State = "live"
	// Retrying: waiting to retry after a failure, per its error handler.
	Retrying State = "retrying"
	// Paused: paused by an operator; it handles nothing until it is
	// resumed, and keeps its lease meanwhile (see [Runner.Pause]).
	Paused State = "paused"
	// Failed: its error handler gave up; it stays down.
	Failed State = "failed"
	// Stopped: the runner has stopped it.
	Stopped State = "stopped"
)

// ProcessorStatus is the state of one processor of a runner.
type ProcessorStatus struct {
	Name string `json:"name"`
	// Kind is "projector", "reactor" or "processor".
	Kind  string `json:"kind"`
	State State  `json:"state"`
	// Owner is the owner ID of the process that holds the processor's
	// lease, as this process last saw it ("" when none does).
	Owner string `json:"owner"`
	// Position is the position of the last event the processor has
	// handled (in Standby: the position its owner had reached when this
	// process last looked).
	Position int64 `json:"position"`
	// Head is the position of the store's newest event, and Lag the
	// number of events from Position to it (counted by the store's
	// Distance, where positions may lie far apart).
	Head int64 `json:"head"`
	Lag  int64 `json:"lag"`
	// Rate is how fast the position moved lately, in events (positions)
	// per second, measured by this process.
	Rate float64 `json:"events_per_second"`
	// Attempts counts the failures in a row; 0 when healthy.
	Attempts int `json:"attempts"`
	// Paused reports whether the processor is paused, as this process
	// last knew: paused here ([Runner.Pause]), or found paused by its run
	// here (in state Paused). A processor standing by here does not read
	// the flag; the store's ListPositions has it for every processor.
	Paused bool `json:"paused"`
	// LastError is the latest failure, kept after the processor recovers;
	// nil if it never failed. In JSON, its message or null.
	LastError error `json:"-"`
	// Parked counts the processor's parked events (see
	// [processing.Options.Park]), and OldestParkedAge is how long ago the
	// oldest of them first failed (0 when none is); in JSON, in seconds.
	Parked          int           `json:"parked"`
	OldestParkedAge time.Duration `json:"-"`
	// Rebuild is the progress of the new version a versioned projector
	// builds beside the active one; nil (null) when none is being built.
	Rebuild *RebuildStatus `json:"rebuild"`
	// Partitions holds the state of each partition of a partitioned
	// processor, by index (omitted when it has none); the fields above
	// sum them up: Position is the smallest partition's.
	Partitions []PartitionStatus `json:"partitions,omitempty"`
}

// MarshalJSON encodes s with its LastError as a string.
func (s ProcessorStatus) MarshalJSON() ([]byte, error) {
	type plain ProcessorStatus
	return json.Marshal(struct {
		plain
		LastError       *string `json:"last_error"`
		OldestParkedAge float64 `json:"oldest_parked_age_seconds"`
	}{plain(s), errorText(s.LastError), math.Round(s.OldestParkedAge.Seconds()*10) / 10})
}

// Status is a snapshot of a runner and its processors.
type Status struct {
	// Owner is the runner's owner ID.
	Owner string `json:"owner"`
	// Head is the position of the store's newest event.
	Head int64 `json:"head"`
	// HeadError is the error of reading the head, in which case Head is
	// the last one read; nil otherwise. In JSON, its message or null.
	HeadError  error             `json:"-"`
	Processors []ProcessorStatus `json:"processors"`
}

// MarshalJSON encodes s with its HeadError as a string.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		HeadError *string `json:"head_error"`
	}{plain(s), errorText(s.HeadError)})
}

func errorText(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// Status returns the state of every processor, in the order given to
// [New]. It reads the store's head (one query).
func (r *Runner) Status(ctx context.Context) Status {
	head, err := r.store.Head(ctx)
	var counted []processing.Status
	if err == nil {
		counted = r.countLags(ctx, head)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.head = head
	}
	st := Status{Owner: r.Owner(), Head: r.head, HeadError: err, Processors: make([]ProcessorStatus, len(r.procs))}
	for i, pr := range r.procs {
		st.Processors[i] = r.statusOf(pr, statusNow(counted, i, pr))
	}
	return st
}

// statusOf builds pr's status from its processor's, with r.mu held.
func (r *Runner) statusOf(pr *proc, ps processing.Status) ProcessorStatus {
	s := ProcessorStatus{
		Name:      ps.Name,
		Kind:      pr.kind,
		Owner:     ps.Owner,
		Position:  ps.Position,
		Head:      max(r.head, ps.Position),
		Rate:      math.Round(pr.rate*10) / 10,
		Attempts:  ps.Attempts,
		Paused:    ps.Paused,
		LastError: ps.LastError,
		Parked:    ps.Parked,
	}
	if !ps.OldestParked.IsZero() {
		s.OldestParkedAge = max(time.Since(ps.OldestParked), 0)
	}
	s.Lag = pr.lagOf(s.Position, s.Head)
	switch ps.State {
	case processing.Standby:
		pr.caughtUp = false
	case processing.Running:
		if s.Lag == 0 {
			pr.caughtUp = true
		} else if s.Lag > liveLag {
			pr.caughtUp = false
		}
	}
	s.State = stateOf(ps.State, pr.caughtUp)
	if ps.State == processing.Idle && pr.done {
		s.State = Stopped
	}
	if pr.done && pr.err != nil {
		s.State = Failed
		if s.LastError == nil {
			s.LastError = pr.err
		}
	}
	s.Rebuild = r.rebuildOf(pr)
	s.Partitions = partitionsOf(ps, s.Head)
	return s
}

// sampleInterval is how often the runner reads the head and the
// processors' positions, to measure their rates.
const sampleInterval = time.Second

// rateWindow is how far back a processor's rate looks: long enough to
// span several batches, so a rate is not 0 just because no batch committed
// in the last sample interval.
const rateWindow = 10 * time.Second

// rateSample is a processor's position at a time.
type rateSample struct {
	at       time.Time
	position int64
}

// rates keeps a processor's recent positions.
type rates struct{ samples []rateSample }

// add records the position at now and returns the rate over the samples
// of the last rateWindow, in positions per second (0 until there are two).
// A position that went back (a reset) starts the window again.
func (rs *rates) add(now time.Time, position int64) float64 {
	if n := len(rs.samples); n > 0 && position < rs.samples[n-1].position {
		rs.samples = rs.samples[:0]
	}
	rs.samples = append(rs.samples, rateSample{now, position})
	drop := 0
	for drop < len(rs.samples)-2 && now.Sub(rs.samples[drop+1].at) >= rateWindow {
		drop++
	}
	rs.samples = rs.samples[drop:]
	first := rs.samples[0]
	dt := now.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(position-first.position) / dt
}

// sample measures the processors' rates and logs the progress of those
// catching up, until ctx ends.
func (r *Runner) sample(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	now := time.Now()
	r.mu.Lock()
	for _, pr := range r.procs {
		pr.sampleRate(now, pr.p.Status().Position)
		pr.lastLog = now
	}
	r.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		head, err := r.store.Head(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "runner cannot read the head", "error", err)
			}
			continue
		}
		counted := r.countLags(ctx, head)
		now := time.Now()
		r.mu.Lock()
		r.head = head
		for i, pr := range r.procs {
			ps := statusNow(counted, i, pr)
			pr.rate = pr.sampleRate(now, ps.Position)
			r.sampleRebuild(ctx, log, pr, ps.Name, now)
			s := r.statusOf(pr, ps)
			wasLive := pr.reportedLive
			pr.reportedLive = s.State == Live
			switch {
			case s.State == Live && !wasLive:
				log.InfoContext(ctx, "event processor caught up", "processor", s.Name, "kind", s.Kind, "position", s.Position)
			case s.State == CatchingUp && r.opts.ProgressInterval > 0 && now.Sub(pr.lastLog) >= r.opts.ProgressInterval:
				pr.lastLog = now
				attrs := []any{"processor", s.Name, "kind", s.Kind, "position", s.Position, "head", s.Head, "remaining", s.Lag, "events_per_second", s.Rate}
				if s.Rate > 0 {
					attrs = append(attrs, "eta", time.Duration(float64(s.Lag)/s.Rate*float64(time.Second)).Round(time.Second))
				}
				log.InfoContext(ctx, "event processor catching up", attrs...)
			}
		}
		r.mu.Unlock()
	}
}

// Handler returns an HTTP handler that serves the runner's [Status] as
// JSON, to GET and HEAD requests. It answers 200 OK whatever the
// processors' states: health checks read the states from the body.
//
// It also pauses and resumes processors ([Runner.Pause], [Runner.Resume]):
// a POST to a path that ends in /<name>/pause or /<name>/resume, below
// wherever the handler is mounted (the name path-escaped), answers the
// processor's status once it is done, 404 for an unknown processor.
// Mount it where only operators can reach it.
func (r *Runner) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			r.serveControl(w, req)
			return
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.MarshalIndent(r.Status(req.Context()), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(body, '\n'))
	})
}
