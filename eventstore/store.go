package eventstore

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"

	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

// ErrInvalidArgument reports bad input to a store call: an empty or
// over-long stream ID, no events, nil data, a negative version and the like.
// Nothing was written.
var ErrInvalidArgument = errors.New("eventstore: invalid argument")

// MaxStreamIDLength is the longest stream ID, in bytes.
const MaxStreamIDLength = 255

// Options configures a [Store]. The zero value works; [Options.Validate]
// reports values that cannot.
type Options struct {
	// TablePrefix is put before every table name; empty means "cairn_".
	// It must be letters, digits and underscores.
	TablePrefix string
	// Logger receives the store's background messages (a lost LISTEN
	// connection and the like); nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock that stamps RecordedAt; nil means time.Now.
	Now func() time.Time
	// NewID makes event IDs when an append does not give them; nil means
	// time-ordered UUIDs (version 7, RFC 9562: a millisecond timestamp and
	// 74 random bits), whose inserts land at the end of the event ID
	// index instead of on a random page of it.
	NewID func() uuid.UUID
	// PollInterval is how often a live subscription looks for events
	// whose wake-up it may have missed (writes from other processes on
	// SQLite, a lost LISTEN connection on PostgreSQL); zero means 500ms.
	PollInterval time.Duration
	// PageSize is how many events a read fetches per query; zero means
	// 1000. Reads hold at most one page in memory.
	PageSize int
	// MaxBatchEvents caps the events of one group-commit transaction; zero
	// means 10,000. A single larger append still goes in one transaction.
	MaxBatchEvents int
	// WriteTimeout bounds one group-commit transaction on PostgreSQL,
	// where it sets its lock_timeout, statement_timeout and
	// idle_in_transaction_session_timeout; zero means 30 seconds. On
	// SQLite, the busy timeout of the connection bounds the waits.
	WriteTimeout time.Duration
	// Ordering is how a PostgreSQL store keeps its global order across
	// processes: OrderingLock (the zero value) or OrderingXID, which lets
	// writers in many processes commit at once (see [Ordering] for what
	// each costs). Migrate records it in the database; a store opened with
	// another one fails with ErrOrderingMismatch. SQLite has only
	// OrderingLock.
	Ordering Ordering
	// TypeIndex makes Migrate create an index on the events' (type,
	// position), for stores whose processors read types too rare to find
	// quickly by scanning the global order (a processor reads the events
	// of its types in position order: without the index it reads past the
	// others, at a few million rows a second, which costs little next to
	// handling them unless its types are a small fraction of the store).
	// The index is an extra write on every event: it roughly doubles the
	// bytes a batch append writes on SQLite. Migrate only ever adds it: a
	// store migrated with it keeps it (drop <prefix>events_type_position_idx
	// to remove it). Off by default.
	TypeIndex bool
	// HorizonWait bounds how long a read of the global order waits, under
	// OrderingXID, for the transactions older than the newest event to end
	// (see [Store.Horizon]); zero means 5 seconds.
	HorizonWait time.Duration
	// MeterProvider provides the meter of the store's metrics (see
	// "Metrics" in the package documentation); nil means the global one,
	// otel.GetMeterProvider(), as it is when New is called.
	MeterProvider metric.MeterProvider

	// TracerProvider makes the tracer of the store's spans (see "Tracing"
	// in the package documentation); nil means otel.GetTracerProvider()
	// as New finds it.
	TracerProvider trace.TracerProvider
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}$`)

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.TablePrefix != "" && !prefixPattern.MatchString(o.TablePrefix) {
		errs = append(errs, fmt.Errorf("table prefix %q: want letters, digits and underscores, at most 41", o.TablePrefix))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %v is negative", o.PollInterval))
	}
	if o.PageSize < 0 {
		errs = append(errs, fmt.Errorf("page size %d is negative", o.PageSize))
	}
	if o.MaxBatchEvents < 0 {
		errs = append(errs, fmt.Errorf("max batch events %d is negative", o.MaxBatchEvents))
	}
	if o.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("write timeout %v is negative", o.WriteTimeout))
	}
	if !o.Ordering.valid() {
		errs = append(errs, fmt.Errorf("unknown %v", o.Ordering))
	}
	if o.HorizonWait < 0 {
		errs = append(errs, fmt.Errorf("horizon wait %v is negative", o.HorizonWait))
	}
	if o.Ordering == OrderingXID && o.MaxBatchEvents > MaxXIDTransactionEvents {
		errs = append(errs, fmt.Errorf("max batch events %d: xid ordering holds at most %d events per transaction", o.MaxBatchEvents, MaxXIDTransactionEvents))
	}
	if err := errors.Join(errs...); err != nil {
		return &argError{err}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.TablePrefix == "" {
		o.TablePrefix = "cairn_"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = newTimeOrderedID
	}
	if o.PollInterval == 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.PageSize == 0 {
		o.PageSize = 1000
	}
	if o.MaxBatchEvents == 0 {
		o.MaxBatchEvents = 10_000
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.HorizonWait == 0 {
		o.HorizonWait = 5 * time.Second
	}
	return o
}

// Store is an event store on a SQL database. It is safe for concurrent use
// by many goroutines; several Stores (in one process or many) may share a
// database and keep every guarantee of the package.
type Store struct {
	gdb  *gorm.DB
	db   *sql.DB
	reg  *event.Registry
	opts Options
	d    dialect
	q    *queries // the dialect's
	w    writer
	wake signal
	m    *storeMetrics
	pg   *pgListener // nil on SQLite
	hz   *horizon    // nil but under OrderingXID
	txs  txMarks     // the transactions of Transaction, for AppendTx
	// posWake and pgPos wake the waiters for processors' positions (see
	// positions_watch.go); pgPos is nil on SQLite.
	posWake signal
	pgPos   *pgListener
	tr      storeTracer // trace.go
}

// New returns a store over db that encodes and decodes event data with reg.
// It does not touch the database: call [Store.Migrate] to create the
// tables. db must be a SQLite or PostgreSQL connection.
func New(db *gorm.DB, reg *event.Registry, opts Options) (*Store, error) {
	if db == nil {
		return nil, fail("new", "", "", invalid("nil *gorm.DB"))
	}
	if reg == nil {
		return nil, fail("new", "", "", invalid("nil *event.Registry"))
	}
	if err := opts.Validate(); err != nil {
		return nil, fail("new", "", "", err)
	}
	opts = opts.withDefaults()
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fail("new", "", "", err)
	}
	s := &Store{gdb: db, db: sqlDB, reg: reg, opts: opts, tr: newStoreTracer(opts.TracerProvider)}
	// The one place that asks which database this is.
	t := newTables(opts.TablePrefix)
	system := "postgresql" // OpenTelemetry's db.system.name
	switch name := db.Dialector.Name(); name {
	case "sqlite":
		if opts.Ordering != OrderingLock {
			return nil, fail("new", "", "", invalid("%s ordering needs PostgreSQL", opts.Ordering))
		}
		system = "sqlite"
		d := newSQLiteDialect(sqlDB, t, opts)
		s.d, s.q = d, &d.q
	case "postgres":
		d := newPostgresDialect(sqlDB, t, opts)
		s.d, s.q = d, &d.q
		s.pg = newPGListener(&d.names, db, opts.Logger)
		if opts.Ordering == OrderingXID {
			s.hz = newHorizon(sqlDB, &d.names, t, opts, s.pg.sig.wait)
		}
		s.pgPos = newPositionsListener(&d.names, db, opts, &s.posWake)
	default:
		return nil, fail("new", "", "", invalid("dialect %q, want sqlite or postgres", name))
	}
	s.w.store = s
	if s.m, err = newStoreMetrics(opts.MeterProvider, system); err != nil {
		return nil, fail("new", "", "", fmt.Errorf("metrics: %w", err))
	}
	return s, nil
}

// Registry returns the registry the store encodes and decodes with.
func (s *Store) Registry() *event.Registry { return s.reg }

// DB returns the gorm handle the store works on.
func (s *Store) DB() *gorm.DB { return s.gdb }

// validStreamID checks a stream ID: non-empty, at most MaxStreamIDLength
// bytes, valid UTF-8 without NUL (PostgreSQL text cannot hold NUL, and both
// databases must accept the same IDs).
func validStreamID(id string) error {
	switch {
	case id == "":
		return invalid("empty stream ID")
	case len(id) > MaxStreamIDLength:
		return invalid("stream ID of %d bytes, longer than %d", len(id), MaxStreamIDLength)
	case !utf8.ValidString(id):
		return invalid("stream ID %q is not valid UTF-8", id)
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return invalid("stream ID %q contains NUL", id)
		}
	}
	return nil
}

// validText checks a causation or correlation ID or a type name the same
// way, without the length limit.
func validText(what, v string) error {
	if !utf8.ValidString(v) {
		return invalid("%s %q is not valid UTF-8", what, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return invalid("%s %q contains NUL", what, v)
		}
	}
	return nil
}

// newTimeOrderedID returns a version 7 UUID. Its generator fails only when
// the system's random source does; the random version 4 is then no better
// off, but uuid.New panics on that same failure, so NewV7's error is the
// one to report — it cannot be returned from here, and an ID must be made:
// fall back to uuid.New, which panics with the reason.
func newTimeOrderedID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}
