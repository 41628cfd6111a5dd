package runner

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"time"

	"github.com/cairnhq/cairn/processing"
)

// builder is a processor that builds new versions of its output beside
// the one that serves: a versioned *projector.Projector.
type builder interface {
	// Building reports the version being built, if any.
	Building() (processing.Build, bool)
}

// RebuildStatus is the progress of a processor's rebuild: a new version of
// a versioned projector built beside the active one, by a processor of its
// own, until it has caught up and is swapped in.
type RebuildStatus struct {
	// Version is the version being built, as its code declares it, and
	// Label the build's name ("v4", or "v3r1" for a rebuild of version
	// 3).
	Version int    `json:"version"`
	Label   string `json:"label"`
	// Processor is the name of the processor that builds it.
	Processor string `json:"processor"`
	// State is the builder's: CatchingUp while it builds in this
	// process, Standby while another process builds it.
	State State `json:"state"`
	// Owner is the owner ID of the process that builds it, as this
	// process last saw it.
	Owner string `json:"owner"`
	// Position is the builder's position, Head the store's head and
	// Remaining the distance between them, in positions (which, in a
	// store whose positions lie far apart, are not events).
	Position  int64 `json:"position"`
	Head      int64 `json:"head"`
	Remaining int64 `json:"remaining"`
	// Rate is how fast the builder's position moved over the last
	// seconds, in positions per second, measured by this process; ETA is
	// the time
	// left to the swap at that rate, 0 when unknown (in JSON,
	// eta_seconds, null when unknown).
	Rate float64       `json:"events_per_second"`
	ETA  time.Duration `json:"-"`
	// Attempts counts the builder's failures in a row; LastError is its
	// latest failure (in JSON, its message or null).
	Attempts  int   `json:"attempts"`
	LastError error `json:"-"`
}

// MarshalJSON encodes s with its ETA in seconds and its LastError as a
// string.
func (s RebuildStatus) MarshalJSON() ([]byte, error) {
	type plain RebuildStatus
	var eta *float64
	if s.ETA > 0 {
		v := s.ETA.Seconds()
		eta = &v
	}
	return json.Marshal(struct {
		plain
		ETA       *float64 `json:"eta_seconds"`
		LastError *string  `json:"last_error"`
	}{plain(s), eta, errorText(s.LastError)})
}

// buildSample is what the sampler last saw of a processor's build.
type buildSample struct {
	label   string // "" when none
	rates   rates
	rate    float64
	lastLog time.Time
}

// rebuildOf returns pr's rebuild, nil when it has none, with r.mu held.
func (r *Runner) rebuildOf(pr *proc) *RebuildStatus {
	b, ok := pr.p.(builder)
	if !ok {
		return nil
	}
	bs, ok := b.Building()
	if !ok {
		return nil
	}
	s := &RebuildStatus{
		Version:   bs.Version,
		Label:     bs.Label,
		Processor: bs.Name,
		State:     stateOf(bs.State, false), // a build is never live
		Owner:     bs.Owner,
		Position:  bs.Position,
		Head:      max(r.head, bs.Position),
		Attempts:  bs.Attempts,
		LastError: bs.LastError,
	}
	s.Remaining = s.Head - s.Position
	if pr.build.label == bs.Label {
		s.Rate = math.Round(pr.build.rate*10) / 10
	}
	if s.Rate > 0 {
		s.ETA = time.Duration(float64(s.Remaining) / s.Rate * float64(time.Second)).Round(time.Second)
	}
	return s
}

// sampleRebuild measures the rate of pr's build and logs its progress
// every ProgressInterval while this process builds it, with r.mu held.
func (r *Runner) sampleRebuild(ctx context.Context, log *slog.Logger, pr *proc, name string, now time.Time) {
	b, ok := pr.p.(builder)
	if !ok {
		return
	}
	bs, ok := b.Building()
	if !ok {
		pr.build = buildSample{}
		return
	}
	if pr.build.label != bs.Label {
		pr.build = buildSample{label: bs.Label, lastLog: now}
	}
	pr.build.rate = max(pr.build.rates.add(now, bs.Position), 0)
	if bs.State != processing.Running || r.opts.ProgressInterval <= 0 || now.Sub(pr.build.lastLog) < r.opts.ProgressInterval {
		return
	}
	pr.build.lastLog = now
	s := r.rebuildOf(pr)
	attrs := []any{"processor", name, "builder", s.Processor, "version", s.Version, "label", s.Label,
		"position", s.Position, "head", s.Head, "remaining", s.Remaining, "events_per_second", s.Rate}
	if s.ETA > 0 {
		attrs = append(attrs, "eta", s.ETA)
	}
	log.InfoContext(ctx, "projector rebuilding beside the active version", attrs...)
}
