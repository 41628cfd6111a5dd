package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// Config says how the suite reaches the database set-up under test.
type Config struct {
	// NewDatabase returns the DSN of a new, empty database for one part
	// of the suite: a database, a schema (with the DSN setting its
	// search_path) or a file that nothing else uses, reachable by Open in
	// this process and in child processes. It must remove the database
	// when t ends (t.Cleanup): the suite writes nowhere else, and it
	// closes every connection it opened, and waits for its child
	// processes, before cleanups registered by NewDatabase run. It fails
	// t (or skips it) when it cannot.
	NewDatabase func(t testing.TB) string
	// Open opens the database named by a DSN that NewDatabase returned,
	// as the application would (the driver, pool and session settings
	// under test). The suite calls it many times per database, since
	// several stores on their own pools stand for several processes, and
	// closes each *gorm.DB it gets. A SQLite ":memory:" database cannot be
	// opened twice, so it cannot be tested.
	Open func(dsn string) (*gorm.DB, error)
	// Options are the store options the suite starts from, for the
	// settings under test: TablePrefix, WriteTimeout, MaxBatchEvents,
	// PageSize. A nil Logger logs to the test's output, and a zero
	// PollInterval becomes 20ms so that live tests across stores are
	// quick. Parts that test an option (Now, NewID, PageSize) set it
	// themselves.
	Options eventstore.Options
	// OrderingEvents is how many events the global-order tests write
	// across all their writers; zero means 4,000, or 500 with -short.
	// More finds rarer ordering faults; each writer writes an eighth.
	OrderingEvents int
	// Parallel runs the parts of the suite in parallel (t.Parallel), each
	// on its own database. It is quicker and holds more connections at
	// once: leave it off on a server with a small connection limit.
	Parallel bool
}

// Validate reports a configuration the suite cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.NewDatabase == nil {
		errs = append(errs, errors.New("no NewDatabase function"))
	}
	if c.Open == nil {
		errs = append(errs, errors.New("no Open function"))
	}
	if c.OrderingEvents < 0 {
		errs = append(errs, fmt.Errorf("ordering events %d is negative", c.OrderingEvents))
	}
	if err := c.Options.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run runs the suite as subtests of t, one per part, each named after the
// behaviour it checks; its own subtests are named after outcomes.
//
// The global-order and migration parts start this test binary again as a
// child process that runs t's test with -test.run and an environment
// variable: in that process Run plays the child's part and then ends the
// test (t.SkipNow), so the code of the test around Run must run again
// without harm, and each test may call Run once.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	if spec, ok := childFromEnv(t); ok {
		runChild(t, cfg, spec, nil)
		return
	}
	s := &suite{cfg: cfg, caller: t}
	for _, p := range parts() {
		t.Run(p.name, func(t *testing.T) {
			if cfg.Parallel {
				t.Parallel()
			}
			p.run(t, s)
		})
	}
}

// part is one group of the suite's tests.
type part struct {
	name string
	run  func(t *testing.T, s *suite)
}

// parts lists the suite, in the order it runs.
func parts() []part {
	return []part{
		{"expected_versions", testExpectedVersions},
		{"bad_input_writes_nothing", testBadInput},
		{"stream_IDs_match_exactly", testStreamIDs},
		{"data_reads_back_as_appended", testRoundTrip},
		{"idempotent_appends", testIdempotent},
		{"atomic_appends", testAtomic},
		{"stream_versions_count_up_without_holes", testVersions},
		{"global_order_holds_under_concurrent_writers", testGlobalOrder},
		{"global_order_holds_across_processes", testOrderAcrossProcesses},
		{"reads", testReads},
		{"subscriptions", testSubscriptions},
		{"batches", testBatches},
		{"deletion", testDeletion},
		{"snapshots", testSnapshots},
		{"reads_from_a_snapshot", testReadFromSnapshot},
		{"migration", testMigration},
		{"decoding", testDecoding},
	}
}

// suite is one run of the suite.
type suite struct {
	cfg Config
	// caller is the test that called Run: child processes run it again.
	caller *testing.T
}

// orderingEvents returns how many events the global-order tests write,
// a multiple of 8.
func (s *suite) orderingEvents() int {
	n := s.cfg.OrderingEvents
	if n == 0 {
		n = 4000
		if testing.Short() {
			n = 500
		}
	}
	return max(8, n-n%8)
}

// database is a database of the suite, from Config.NewDatabase.
type database struct {
	cfg Config
	dsn string
}

// database gives t a new database.
func (s *suite) database(t *testing.T) *database {
	t.Helper()
	return &database{cfg: s.cfg, dsn: s.cfg.NewDatabase(t)}
}

// open opens a new connection pool to the database, closed when t ends.
func (d *database) open(t testing.TB) *gorm.DB {
	t.Helper()
	return openDB(t, d.cfg, d.dsn)
}

func openDB(t testing.TB, cfg Config, dsn string) *gorm.DB {
	t.Helper()
	db, err := cfg.Open(dsn)
	if err != nil {
		t.Fatalf("storetest: open %q: %v", dsn, err)
	}
	testkit.CloseWhenDone(t, db)
	return db
}

// options returns the suite's store options, changed by set.
func options(t testing.TB, cfg Config, set []func(*eventstore.Options)) eventstore.Options {
	o := cfg.Options
	if o.Logger == nil {
		o.Logger = testkit.Logger(t)
	}
	if o.PollInterval == 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	for _, f := range set {
		f(&o)
	}
	return o
}

// store returns a store with the domain's registry on a new connection
// pool, not migrated.
func (d *database) store(t testing.TB, set ...func(*eventstore.Options)) *eventstore.Store {
	t.Helper()
	return d.storeWith(t, testkit.NewRegistry(), set...)
}

// storeWith is store with the given registry.
func (d *database) storeWith(t testing.TB, reg *event.Registry, set ...func(*eventstore.Options)) *eventstore.Store {
	t.Helper()
	return testkit.NewStore(t, d.open(t), reg, options(t, d.cfg, set))
}

// migrated is store followed by Migrate.
func (d *database) migrated(t testing.TB, set ...func(*eventstore.Options)) *eventstore.Store {
	t.Helper()
	s := d.store(t, set...)
	testkit.Migrate(t, s)
	return s
}

// pageSize returns an option setter for the page size.
func pageSize(n int) func(*eventstore.Options) {
	return func(o *eventstore.Options) { o.PageSize = n }
}
