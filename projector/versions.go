package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/processing"
)

// Defaults of the versioning options' zero values.
const (
	// DefaultDropAfter is how long a retired version's tables are kept
	// after the swap: long enough for the queries that began before it to
	// finish, and for an operator to look at the old version.
	DefaultDropAfter = 10 * time.Minute
	// DefaultPollInterval is how often a running versioned projector
	// reads the state of its versions.
	DefaultPollInterval = time.Second
)

// ErrOutdated reports a versioned projector whose code declares an older
// version than the one that is active or being built: a process of the
// previous deployment. Such a projector does not run its handlers; it
// waits, standing by, until it is replaced.
var ErrOutdated = errors.New("projector: a newer version is active")

// VersionStore is what a versioned projector needs of an event store
// beyond [Store]: the state of the projection's versions, which it changes
// in transactions of the store's database, the head, and reads of the
// events it handles in the transaction of a swap. *eventstore.Store
// implements it; see its methods of the same names.
type VersionStore interface {
	Store
	Head(ctx context.Context) (int64, error)
	ProjectionVersions(ctx context.Context, projector string) ([]eventstore.ProjectionVersion, error)
	ProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector, label string) (eventstore.ProjectionVersion, bool, error)
	ActiveProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector string) (eventstore.ProjectionVersion, bool, error)
	LockProjectionVersionsTx(ctx context.Context, tx *gorm.DB, projector string) ([]eventstore.ProjectionVersion, error)
	AddProjectionVersionTx(ctx context.Context, tx *gorm.DB, v eventstore.ProjectionVersion) error
	AdoptProjectionTablesTx(ctx context.Context, tx *gorm.DB, tables []string, label string) ([]string, error)
	RetireProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector, label string) error
	SwapProjectionVersionTx(ctx context.Context, tx *gorm.DB, projector, label string, catchUp func(active int64, read func(after int64, limit int, types ...string) (event.Batch, error)) (int64, error)) error
	DropRetiredProjectionVersions(ctx context.Context, projector string, olderThan time.Duration) ([]eventstore.ProjectionVersion, error)
}

var _ VersionStore = (*eventstore.Store)(nil)

// maxTableName bounds the (unqualified) names of a versioned projector's
// tables, so that a physical name with its label stays within
// PostgreSQL's 63 bytes.
const maxTableName = 40

// maxLabel bounds a label's length ("v" and two numbers).
const maxLabel = 1 + 2*20 + 1

func (o Options) validateVersion() error {
	if o.Version == 0 {
		return nil
	}
	var errs []error
	if o.Version < 0 {
		errs = append(errs, fmt.Errorf("version %d is negative", o.Version))
	}
	if len(o.Tables) == 0 {
		errs = append(errs, errors.New("a versioned projector needs Tables"))
	}
	if o.Setup == nil {
		errs = append(errs, errors.New("a versioned projector needs Setup, to create the tables of each version"))
	}
	for _, t := range o.Tables {
		if base := t[lastDot(t)+1:]; len(base) > maxTableName {
			errs = append(errs, fmt.Errorf("table name %q: longer than %d bytes, too long to version", t, maxTableName))
		}
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %v is negative", o.PollInterval))
	}
	if o.Processing.Start != processing.FromBeginning() {
		errs = append(errs, errors.New("a versioned projector builds every version from the first event: Processing.Start must be FromBeginning"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", processing.ErrInvalid, err)
	}
	return nil
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// tablesKey is the context key of the version a batch or Setup works on.
type tablesKey struct{}

// tableScope is the version a batch or Setup works on: its label and the
// projector's tables.
type tableScope struct {
	label  string
	tables []string
}

// Table returns the physical name of table — one of the projector's
// Options.Tables — in the version that the Setup, hook or handler that
// got ctx works on: eventstore.ProjectionTable(table, label), such as
// todos_v3 for the table todos of version 3. For a projector that is not
// versioned, and for any other name, it returns table unchanged: a
// handler may read another projection through its view.
//
// A versioned projector's Setup, hooks and handlers must name its own
// tables through Table — in CREATE TABLE, CREATE INDEX (give indexes
// names made from the physical table name), INSERT, UPDATE and the rest
// — and never through the views, which show the active version only.
func Table(ctx context.Context, table string) string {
	s, ok := ctx.Value(tablesKey{}).(*tableScope)
	if !ok || !slices.Contains(s.tables, table) {
		return table
	}
	return eventstore.ProjectionTable(table, s.label)
}

func withTables(ctx context.Context, label string, tables []string) context.Context {
	return context.WithValue(ctx, tablesKey{}, &tableScope{label: label, tables: tables})
}

// Errors that end the run of a follower or a builder (as the cause of its
// context's cancellation).
var (
	// errOutdated: the active version is not the code's.
	errOutdated = errors.New("the active version is not this code's version")
	// errBuildOver: the build was given up or swapped by another process.
	errBuildOver = errors.New("the version is no longer being built")
	// errSwapped: this process swapped the build in.
	errSwapped = errors.New("the version was swapped in")
)

// versioning is the state of a versioned projector.
type versioning struct {
	store     VersionStore
	version   int64
	dropAfter time.Duration
	poll      time.Duration
	log       *slog.Logger

	running atomic.Bool
	// wake tells the supervisor to read the versions again at once.
	wake chan struct{}
	// swapHook, if set (by tests), runs in the transaction of a swap,
	// once it has made its changes, before the commit.
	swapHook func()

	mu sync.Mutex
	// waiting: the follower does not run, because the active version is
	// not the code's.
	waiting bool
	// stopFollower ends the follower's current run; nil when none runs.
	stopFollower context.CancelCauseFunc
	// build is the build this process runs or stands by for, or the last
	// one it ran; nil when none.
	build *build
}

func newVersioning(store Store, name string, opts Options) (*versioning, error) {
	vs, ok := store.(VersionStore)
	if !ok {
		return nil, fmt.Errorf("projector: new %q: %w: the store (%T) does not keep projection versions", name, processing.ErrInvalid, store)
	}
	if len(name)+1+maxLabel > processing.MaxNameLength {
		return nil, fmt.Errorf("projector: new %q: %w: name too long for a versioned projector's builders", name, processing.ErrInvalid)
	}
	v := &versioning{
		store:     vs,
		version:   int64(opts.Version),
		dropAfter: opts.DropAfter,
		poll:      opts.PollInterval,
		log:       opts.Processing.Logger,
		wake:      make(chan struct{}, 1),
	}
	if v.dropAfter == 0 {
		v.dropAfter = DefaultDropAfter
	}
	if v.poll == 0 {
		v.poll = DefaultPollInterval
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	v.log = v.log.With("projector", name)
	return v, nil
}

// wakeUp makes the supervisor read the versions again at once.
func (v *versioning) wakeUp() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// builderName is the name of the processor that builds the version
// labelled label of the projector name.
func builderName(name, label string) string { return name + "@" + label }

// nextLabel returns the label of a new build of version: "v<version>", or
// "v<version>r<k>" with the least k that no version of vs has.
func nextLabel(version int64, vs []eventstore.ProjectionVersion) string {
	used := func(l string) bool {
		return slices.ContainsFunc(vs, func(v eventstore.ProjectionVersion) bool { return v.Label == l })
	}
	base := "v" + strconv.FormatInt(version, 10)
	if !used(base) {
		return base
	}
	for k := 1; ; k++ {
		if l := base + "r" + strconv.Itoa(k); !used(l) {
			return l
		}
	}
}

// liveVersions returns the active version and the one being built, each
// nil when there is none.
func liveVersions(vs []eventstore.ProjectionVersion) (active, building *eventstore.ProjectionVersion) {
	for i := range vs {
		switch vs[i].State {
		case eventstore.ProjectionActive:
			active = &vs[i]
		case eventstore.ProjectionBuilding:
			building = &vs[i]
		}
	}
	return active, building
}

// ensureMode says what ensure is for.
type ensureMode int

const (
	// ensureMigrate: Migrate: create what the code's version needs, and
	// run Setup for the code's versions (it must be safe to run again).
	ensureMigrate ensureMode = iota
	// ensureRun: a running projector found the versions lacking.
	ensureRun
	// ensureRebuild: Rebuild: build the code's version again.
	ensureRebuild
)

// ensure brings the projector's versions to what the code needs, in one
// transaction under the versions' lock: a first active version, or a
// build of the code's version (retiring any build of an older one). It
// reports whether it recorded a new build.
func (p *Projector) ensure(ctx context.Context, mode ensureMode) (started bool, err error) {
	v, name, code := p.ver, p.Name(), p.ver.version
	var label string // of the build started
	setup := func(tx *gorm.DB, label string) error {
		if err := p.opts.Setup(withTables(ctx, label, p.opts.Tables), tx); err != nil {
			return fmt.Errorf("setup of %s: %w", label, err)
		}
		return nil
	}
	err = p.store.Transaction(ctx, func(tx *gorm.DB) error {
		started = false
		vs, err := v.store.LockProjectionVersionsTx(ctx, tx, name)
		if err != nil {
			return err
		}
		active, building := liveVersions(vs)
		if active == nil {
			adopted, err := v.store.AdoptProjectionTablesTx(ctx, tx, p.opts.Tables, "v0")
			if err != nil {
				return err
			}
			if len(adopted) == 0 {
				// A new projection: its first version is active at once,
				// and its processor starts from the first event.
				label := nextLabel(code, vs)
				if err := setup(tx, label); err != nil {
					return err
				}
				first := eventstore.ProjectionVersion{Projector: name, Label: label, Version: code, State: eventstore.ProjectionActive, Tables: p.opts.Tables}
				if err := v.store.AddProjectionVersionTx(ctx, tx, first); err != nil {
					return err
				}
				return p.store.ResetPositionTx(ctx, tx, name)
			}
			// The tables of the projector before it was versioned serve,
			// as version 0, with its position, until the code's version
			// is built.
			v0 := eventstore.ProjectionVersion{Projector: name, Label: "v0", Version: 0, State: eventstore.ProjectionActive, Tables: adopted}
			if err := v.store.AddProjectionVersionTx(ctx, tx, v0); err != nil {
				return err
			}
			v.log.InfoContext(ctx, "projector adopted its tables as version 0", "tables", adopted)
			vs = append(vs, v0)
			active = &vs[len(vs)-1]
		}
		switch {
		case active.Version > code || (building != nil && building.Version > code):
			if mode == ensureRebuild {
				newer := active.Version
				if building != nil {
					newer = max(newer, building.Version)
				}
				return fmt.Errorf("%w: version %d is active or being built; this code has version %d", ErrOutdated, newer, code)
			}
			return nil
		case building != nil && building.Version == code:
			if mode == ensureMigrate {
				return setup(tx, building.Label)
			}
			return nil
		case active.Version == code && mode != ensureRebuild:
			if mode == ensureMigrate {
				return setup(tx, active.Label)
			}
			return nil
		}
		// Build the code's version: it is newer than the active one, or
		// a rebuild of it was asked for.
		if building != nil {
			if err := v.store.RetireProjectionVersionTx(ctx, tx, name, building.Label); err != nil {
				return err
			}
		}
		label = nextLabel(code, vs)
		if err := setup(tx, label); err != nil {
			return err
		}
		b := eventstore.ProjectionVersion{
			Projector: name, Label: label, Version: code, State: eventstore.ProjectionBuilding,
			Tables: p.opts.Tables, Builder: builderName(name, label),
		}
		if err := v.store.AddProjectionVersionTx(ctx, tx, b); err != nil {
			return err
		}
		started = true
		return nil
	})
	if err == nil && started {
		v.log.InfoContext(ctx, "projector version to build beside the active one", "version", code, "label", label)
	}
	return started, err
}
