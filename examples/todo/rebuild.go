package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cairnhq/cairn/projector"
)

// projectors returns the app's projectors: its read side, which can be
// rebuilt beside the version that serves. (The notifier, a reactor, is
// never rebuilt: a rebuild has no side effects.)
func (a *app) projectors() []*projector.Projector {
	return []*projector.Projector{a.outstanding, a.scheduled, a.completed}
}

// rebuild asks for a rebuild of the named projectors, of all of them when
// none is named: each builds a new copy of its version from the first
// event beside the one that serves, and swaps it in once it has caught up,
// in whichever process runs the projectors (see projector.Rebuild). It
// returns once the rebuilds are asked for; versions reports their
// progress.
func (a *app) rebuild(ctx context.Context, names ...string) error {
	ps, err := a.projectorsNamed(names)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Rebuild(ctx))
	}
	return errors.Join(errs...)
}

// versions returns the state of the versions of the named projectors (all
// when none is named), read from the database: the active version, the
// build in progress with its position, the head, a rate and an estimated
// time to the swap, and the retired versions.
func (a *app) versions(ctx context.Context, names ...string) ([]projector.Versions, error) {
	ps, err := a.projectorsNamed(names)
	if err != nil {
		return nil, err
	}
	out := make([]projector.Versions, 0, len(ps))
	for _, p := range ps {
		v, err := p.Versions(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// projectorsNamed returns the projectors of the given names, all of them
// when none is given.
func (a *app) projectorsNamed(names []string) ([]*projector.Projector, error) {
	all := a.projectors()
	if len(names) == 0 {
		return all, nil
	}
	var out []*projector.Projector
	for _, n := range names {
		i := slices.IndexFunc(all, func(p *projector.Projector) bool { return p.Name() == n })
		if i < 0 {
			return nil, fmt.Errorf("no projector named %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}
