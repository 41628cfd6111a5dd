package projector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// Rebuild asks for a new build of the version of p that the code declares,
// from the first event, beside the active version, which keeps serving
// (and following new events) until the new build has caught up and is
// swapped in. It records the request in the database and returns: the
// projector running in this process (or in any process, within its
// Options.PollInterval) builds it; [Projector.Versions] and the runner's
// status show the progress. Asking while a build of that version is under
// way changes nothing, except that a build that failed in this process is
// tried again. Rebuild fails with an error matching [ErrOutdated] when a
// newer version is active or being built, and with
// [processing.ErrInvalid] for a projector that is not versioned (see
// [Projector.Reset]).
func (p *Projector) Rebuild(ctx context.Context) error {
	if p.ver == nil {
		return fmt.Errorf("projector: rebuild %s: %w: not versioned (Options.Version is 0); Reset empties it in place", p.Name(), processing.ErrInvalid)
	}
	if _, err := p.ensure(ctx, ensureRebuild); err != nil {
		return fmt.Errorf("projector: rebuild %s: %w", p.Name(), err)
	}
	p.ver.mu.Lock()
	if b := p.ver.build; b != nil {
		if b.running {
			b.retry = true
		} else {
			b.err = nil
		}
	}
	p.ver.mu.Unlock()
	p.ver.wakeUp()
	return nil
}

// Versions is the state of a versioned projector's versions, as stored in
// the database: what every process sees.
type Versions struct {
	// Projector is the projector's name; Code is the version its code
	// (this process's) declares.
	Projector string
	Code      int
	// Active is the version the queries read; nil before the first
	// Migrate.
	Active *eventstore.ProjectionVersion
	// Build is the version being built and its progress; nil when none
	// is.
	Build *BuildProgress
	// Retired are the versions replaced by a swap (or given up) whose
	// tables are not dropped yet.
	Retired []eventstore.ProjectionVersion
}

// BuildProgress is the progress of a version being built.
type BuildProgress struct {
	eventstore.ProjectionVersion
	// Owner is the process that holds the builder's lease, "" when none
	// does (no process runs the build now).
	Owner string
	// Position is the builder's saved position, Head the store's head and
	// Remaining the events between them.
	Position, Head, Remaining int64
	// Rate is the builder's average speed since the build was asked for,
	// in events (positions) per second, and ETA the time left to the
	// swap at that speed; both are zero before the first batch. The
	// runner's status has the current rate, measured where it runs.
	Rate float64
	ETA  time.Duration
}

// Versions reads the state of p's versions from the database: the active
// one, the build in progress with its position, the head, an average rate
// and an estimated time to the swap, and the retired ones. It works from
// any process (an admin command, say), whether or not p runs there.
func (p *Projector) Versions(ctx context.Context) (Versions, error) {
	if p.ver == nil {
		return Versions{}, fmt.Errorf("projector: versions of %s: %w: not versioned", p.Name(), processing.ErrInvalid)
	}
	for i := 0; ; i++ {
		v, err := p.versions(ctx, i == 2)
		if errors.Is(err, sql.ErrNoRows) {
			// The build was swapped in (its builder's row removed)
			// between the two reads: read again.
			continue
		}
		if err != nil {
			return Versions{}, fmt.Errorf("projector: versions of %s: %w", p.Name(), err)
		}
		return v, nil
	}
}

// versions reads the versions; with noRow, a build whose builder has no
// position row is shown at 0 instead of failing with sql.ErrNoRows.
func (p *Projector) versions(ctx context.Context, noRow bool) (Versions, error) {
	vs, err := p.ver.store.ProjectionVersions(ctx, p.Name())
	if err != nil {
		return Versions{}, err
	}
	out := Versions{Projector: p.Name(), Code: int(p.ver.version)}
	for _, v := range vs {
		switch v.State {
		case eventstore.ProjectionActive:
			out.Active = &v
		case eventstore.ProjectionBuilding:
			out.Build = &BuildProgress{ProjectionVersion: v}
		default:
			out.Retired = append(out.Retired, v)
		}
	}
	if b := out.Build; b != nil {
		if b.Owner, b.Position, err = p.store.LeaseHolder(ctx, b.Builder); err != nil && !(noRow && errors.Is(err, sql.ErrNoRows)) {
			return Versions{}, err
		}
		if b.Head, err = p.ver.store.Head(ctx); err != nil {
			return Versions{}, err
		}
		b.Remaining = max(b.Head-b.Position, 0)
		if elapsed := time.Since(b.CreatedAt).Seconds(); elapsed > 0 && b.Position > 0 {
			b.Rate = float64(b.Position) / elapsed
			b.ETA = time.Duration(float64(b.Remaining) / b.Rate * float64(time.Second)).Round(time.Second)
		}
	}
	return out, nil
}

// DropRetired drops, now, the tables of every retired version of p — the
// versions replaced by a swap, and builds given up — with their rows and
// their builders' positions, and returns what it dropped: the explicit
// command for a projector whose Options.DropAfter is negative (or that
// does not run). Queries still reading a retired version's tables — none
// can start after the swap — make the drop wait for them on PostgreSQL.
func (p *Projector) DropRetired(ctx context.Context) ([]eventstore.ProjectionVersion, error) {
	if p.ver == nil {
		return nil, fmt.Errorf("projector: drop retired versions of %s: %w: not versioned", p.Name(), processing.ErrInvalid)
	}
	dropped, err := p.ver.store.DropRetiredProjectionVersions(ctx, p.Name(), 0)
	if err != nil {
		return nil, fmt.Errorf("projector: drop retired versions of %s: %w", p.Name(), err)
	}
	return dropped, nil
}
