package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// versioned is what a versioned projector offers the rebuild command
// (projector.Projector with Options.Version set).
type versioned interface {
	Version() int
	Rebuild(ctx context.Context) error
	Versions(ctx context.Context) (projector.Versions, error)
}

// asVersioned returns proc as a versioned projector, if it is one.
func asVersioned(proc Processor) (versioned, bool) {
	v, ok := proc.(versioned)
	if !ok || v.Version() <= 0 {
		return nil, false
	}
	return v, true
}

// runVersionedRebuild asks for a zero-downtime rebuild of a versioned
// projector: the new build runs beside the active version, which keeps
// serving, and is swapped in once it has caught up. The build runs in the
// process that holds the projector's lease, or here when none does; the
// command shows its progress until the swap.
func runVersionedRebuild(ctx context.Context, c *cli, name string, proc Processor, v versioned) error {
	before, err := v.Versions(ctx)
	if err != nil {
		return err
	}
	active := "none"
	if before.Active != nil {
		active = before.Active.Label
	}
	if err := c.confirm("rebuild", fmt.Sprintf("Rebuild projector %q beside its active version (%s): queries keep reading it until the new build has caught up and is swapped in.", name, active)); err != nil {
		return err
	}
	start := time.Now()
	if err := v.Rebuild(ctx); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	vs, err := v.Versions(ctx)
	if err != nil {
		return err
	}
	if vs.Build == nil {
		return fmt.Errorf("rebuild %s: no build recorded after asking for one", name)
	}
	target := vs.Build.Label
	c.log.WarnContext(ctx, "admin: projector rebuild asked", "projector", name, "label", target, "active", active, "by", c.operator())

	// Run the projector here too: if another process holds its lease,
	// this one stands by and that one builds.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- proc.RunOwned(runCtx, processing.Ownership{}) }()
	bar := c.progress("rebuild "+name+" as "+target, "positions", vs.Build.Head)
	t := time.NewTicker(rebuildPoll)
	defer t.Stop()
	for {
		vs, err := v.Versions(ctx)
		if err != nil {
			cancel()
			<-errc
			return err
		}
		if vs.Build != nil {
			bar.total = vs.Build.Head
			bar.set(vs.Build.Position)
		}
		if vs.Active != nil && vs.Active.Label == target {
			break
		}
		select {
		case err := <-errc:
			bar.done()
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("rebuild %s: stopped before the swap: %w", name, err)
		case <-t.C:
		}
	}
	bar.done()
	cancel()
	if err := <-errc; err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	elapsed := time.Since(start)
	c.log.InfoContext(ctx, "admin: projector rebuilt and swapped in", "projector", name, "label", target, "elapsed", elapsed)
	if c.o.json {
		return c.emit(RebuildLine{Projector: name, Label: target, Seconds: elapsed.Seconds()})
	}
	_, err = fmt.Fprintf(c.stdout, "rebuilt %s as %s beside the active version and swapped it in, in %v\n", name, target, elapsed.Round(time.Millisecond))
	return err
}
