package eventstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

// The tests of this file break the connection between a store and
// PostgreSQL while it works: with pg_terminate_backend, as an
// administrator or a failover would, and with a TCP proxy that cuts a
// connection at a chosen moment of a write transaction, which no timing
// of pg_terminate_backend can do reliably.

// connTick is the event data of these tests: which writer, which of its
// appends, which event of the append.
type connTick struct {
	Writer int `json:"writer"`
	Seq    int `json:"seq"`
	Part   int `json:"part"`
}

type tickKey struct{ writer, seq, part int }

func connRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[connTick](reg, "test.conn_tick")
	return reg
}

// connDB is a PostgreSQL test database with the DSN of its schema.
type connDB struct {
	testdb.DB
	app string // application_name of the connections opened by open
}

// newConnDB gives t a PostgreSQL database (skipping t without one), with
// the stores' own application_name so that terminating their connections
// leaves every other connection to the server alone.
func newConnDB(t *testing.T) connDB {
	t.Helper()
	db := testdb.New(t, testdb.Postgres)
	var b [6]byte
	rand.Read(b[:])
	return connDB{DB: db, app: "cairn_connloss_" + hex.EncodeToString(b[:])}
}

// open opens a store on the database, through addr when it is not empty
// (a proxy), with the test's application_name. The store's tables are
// created through a direct connection first. Through a proxy, the
// connections use pgx's default query mode whatever the DSN of the
// environment says: the proxy finds the COMMIT of a write transaction by
// the name pgx gives the cached statement (see commitBind).
func (d connDB) open(t *testing.T, addr string) *eventstore.Store {
	t.Helper()
	u, err := url.Parse(d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if addr != "" {
		u.Host = addr
		q.Set("default_query_exec_mode", "cache_statement")
	}
	q.Set("application_name", d.app)
	u.RawQuery = q.Encode()
	g, err := eventstore.OpenPostgres(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := g.DB(); err == nil {
			s.Close()
		}
	})
	return d.store(t, g)
}

func (d connDB) store(t *testing.T, g *gorm.DB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.New(g, connRegistry(), eventstore.Options{Logger: testdb.Logger(t), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := eventstore.New(d.Gorm, connRegistry(), eventstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := direct.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	return s
}

// direct returns a store on the test's own connection pool, which no
// fault touches.
func (d connDB) direct(t *testing.T) *eventstore.Store {
	t.Helper()
	return d.store(t, d.Gorm)
}

// terminator runs pg_terminate_backend on the connections of an
// application_name from its own connection.
type terminator struct {
	admin *sql.DB
	app   string
}

func newTerminator(t *testing.T, app string) terminator {
	t.Helper()
	admin, err := sql.Open("pgx", os.Getenv(testdb.EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return terminator{admin: admin, app: app}
}

// kill terminates every backend of the application and returns how many.
func (k terminator) kill(ctx context.Context) (int, error) {
	var n int
	err := k.admin.QueryRowContext(ctx,
		"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
		k.app).Scan(&n)
	return n, err
}

// every kills the application's backends again and again, at random
// intervals of up to max, until ctx ends, and returns the number killed.
// It kills again only once progress has moved since the last time, so
// that the test goes on however slow the machine (or the race detector)
// makes each step.
func (k terminator) every(ctx context.Context, t *testing.T, max time.Duration, progress *atomic.Int64) (wait func() int) {
	done := make(chan int, 1)
	go func() {
		total := 0
		defer func() { done <- total }()
		seen := int64(-1)
		for {
			var r [1]byte
			rand.Read(r[:])
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(r[0]) * max / 255):
			}
			if p := progress.Load(); p == seen {
				continue
			} else {
				seen = p
			}
			n, err := k.kill(ctx)
			if err != nil && ctx.Err() == nil {
				t.Errorf("pg_terminate_backend: %v", err)
				return
			}
			total += n
		}
	}()
	return func() int { return <-done }
}

// checkUnavailable fails t unless err is a typed error of a lost
// connection: it matches eventstore.ErrUnavailable, its text says
// "eventstore:" once, and the driver's error is its cause, not the error
// itself.
func checkUnavailable(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("%s = %v (%T), want an error matching eventstore.ErrUnavailable", what, err, err)
		return
	}
	if n := bytes.Count([]byte(err.Error()), []byte("eventstore:")); n != 1 {
		t.Errorf("%s = %q: says \"eventstore:\" %d times, want once", what, err, n)
	}
	if _, raw := err.(*pgconn.PgError); raw {
		t.Errorf("%s = raw %T, want it wrapped", what, err)
	}
}

// 8 writers append without event IDs while the server's connections to
// the store are terminated again and again. Every acknowledged append is
// stored exactly once, no event is stored twice, an append is stored whole
// or not at all, every error is typed: ErrUnavailable for an append that
// is not stored, an *OutcomeUnknownError (which matches ErrUnavailable)
// for one whose outcome the store could not learn in time.
func TestAppendsSurviveTerminatedConnections(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	s := d.open(t, "")
	kill := newTerminator(t, d.app)

	const writers = 8
	appends := 40
	if testing.Short() {
		appends = 12
	}
	type outcome struct {
		events  []event.Event // acknowledged
		unknown []uuid.UUID   // OutcomeUnknownError
		err     error         // any error
	}
	results := make([][]outcome, writers)
	ctx, stop := context.WithCancel(t.Context())
	var progress atomic.Int64
	killed := kill.every(ctx, t, 60*time.Millisecond, &progress)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("conn-%d", w%4) // two writers per stream
			for seq := range appends {
				data := make([]any, 1+seq%3)
				for i := range data {
					data[i] = connTick{Writer: w, Seq: seq, Part: i}
				}
				// Short deadlines now and then, so that some appends
				// give up while their outcome is being resolved.
				timeout := 10 * time.Second
				if seq%4 == 3 {
					timeout = time.Duration(20+seq%7*15) * time.Millisecond
				}
				actx, cancel := context.WithTimeout(t.Context(), timeout)
				got, err := s.Append(actx, stream, event.Any, data)
				cancel()
				o := outcome{events: got, err: err}
				if err == nil && len(got) != len(data) {
					t.Errorf("writer %d: Append(%q) = %s, nil; want %d events", w, stream, connPlaces(got), len(data))
				}
				var u *eventstore.OutcomeUnknownError
				if errors.As(err, &u) {
					o.unknown = u.IDs
				}
				results[w] = append(results[w], o)
				if err == nil {
					progress.Add(1)
				}
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					checkUnavailable(t, fmt.Sprintf("writer %d: Append(%q)", w, stream), err)
				}
			}
		})
	}
	wg.Wait()
	stop()
	t.Logf("%d backends terminated", killed())

	stored := map[tickKey][]event.Event{}
	byStream := map[string][]event.Event{}
	for e, err := range d.direct(t).ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatalf("ReadAll() = %v", err)
		}
		k := e.Data.(connTick)
		stored[tickKey{k.Writer, k.Seq, k.Part}] = append(stored[tickKey{k.Writer, k.Seq, k.Part}], e)
		byStream[e.StreamID] = append(byStream[e.StreamID], e)
	}
	for k, evs := range stored {
		if len(evs) > 1 {
			t.Errorf("%+v stored %d times: %s", k, len(evs), connPlaces(evs))
		}
	}
	for stream, evs := range byStream {
		for i, e := range evs {
			if e.Version != int64(i+1) {
				t.Errorf("stream %q: event %d at version %d, want %d", stream, i, e.Version, i+1)
				break
			}
		}
	}
	var acked, unavailable, unknown, timedOut int
	for w, outs := range results {
		for seq, o := range outs {
			parts := 1 + seq%3
			n := 0
			for i := range parts {
				n += len(stored[tickKey{w, seq, i}])
			}
			switch {
			case o.err == nil:
				acked++
				if len(o.events) != parts {
					t.Errorf("writer %d append %d: acknowledged %s, want %d events", w, seq, connPlaces(o.events), parts)
				}
				for i, e := range o.events {
					got := stored[tickKey{w, seq, i}]
					if len(got) != 1 || got[0].ID != e.ID || got[0].Position != e.Position || got[0].Version != e.Version {
						t.Errorf("writer %d append %d: acknowledged %s, stored %s", w, seq, connPlaces(o.events), connPlaces(got))
					}
				}
			case o.unknown != nil:
				unknown++
				if n != 0 && n != parts {
					t.Errorf("writer %d append %d: outcome unknown, and %d of its %d events are stored", w, seq, n, parts)
				}
				for i, id := range o.unknown {
					if got := stored[tickKey{w, seq, i}]; len(got) == 1 && got[0].ID != id {
						t.Errorf("writer %d append %d: OutcomeUnknownError.IDs[%d] = %s, stored with ID %s", w, seq, i, id, got[0].ID)
					}
				}
			default:
				if errors.Is(o.err, eventstore.ErrUnavailable) {
					unavailable++
				} else {
					timedOut++
				}
				if n != 0 {
					t.Errorf("writer %d append %d failed with %v, and %d of its events are stored", w, seq, o.err, n)
				}
			}
		}
	}
	t.Logf("%d appends acknowledged, %d unavailable, %d outcome unknown, %d timed out while queued", acked, unavailable, unknown, timedOut)
	if acked == 0 {
		t.Errorf("no append was acknowledged")
	}
}

// A live subscription and a writer run while the server's connections to
// the store (its LISTEN connection too) are terminated again and again:
// the subscription reconnects on its own and yields every stored event
// once, in order, and no error; reads either succeed or fail with a typed
// error.
func TestSubscriptionSurvivesTerminatedConnections(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	s := d.open(t, "")
	kill := newTerminator(t, d.app)
	events := 80
	if testing.Short() {
		events = 30
	}

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	type delivery struct {
		events []event.Event
		err    error
	}
	delivered := make(chan delivery, 1)
	var progress atomic.Int64
	go func() {
		var got []event.Event
		for e, err := range s.Subscribe(ctx, 0) {
			if err != nil {
				delivered <- delivery{got, err}
				return
			}
			got = append(got, e)
			progress.Add(1)
			if len(got) == events {
				delivered <- delivery{got, nil}
				return
			}
		}
	}()
	killed := kill.every(ctx, t, 60*time.Millisecond, &progress)

	var appended []event.Event
	var reads, failedReads int
	for i := 0; i < events; {
		data := []any{connTick{Seq: i}}
		var opts []event.AppendOption
		for {
			got, err := s.Append(ctx, "sub", event.Any, data, opts...)
			if err == nil {
				if len(got) != 1 {
					t.Errorf("Append(%v) = %s, nil; want one event", opts, connPlaces(got))
				}
				appended = append(appended, got...)
				progress.Add(1)
				break
			}
			checkUnavailable(t, "Append", err)
			if u := (*eventstore.OutcomeUnknownError)(nil); errors.As(err, &u) {
				// Safe to retry with the same IDs.
				opts = []event.AppendOption{event.WithIDs(u.IDs...)}
			}
		}
		i++
		if i%10 == 0 {
			reads++
			n := 0
			for _, err := range s.ReadStream(ctx, "sub", 0, 0) {
				if err != nil {
					checkUnavailable(t, "ReadStream", err)
					failedReads++
					break
				}
				n++
			}
		}
	}
	var got delivery
	select {
	case got = <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatalf("subscription delivered nothing for 30s")
	}
	stop()
	t.Logf("%d backends terminated; %d of %d reads failed", killed(), failedReads, reads)
	if got.err != nil {
		t.Fatalf("Subscribe() yielded %v after %d events, want no error", got.err, len(got.events))
	}
	checkSame(t, "Subscribe", got.events, appended)
	var stored []event.Event
	for e, err := range d.direct(t).ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, e)
	}
	checkSame(t, "ReadAll", stored, appended)
}

// checkSame fails t unless got and want are the same events (ID, stream,
// version, position, data), in the same order.
func checkSame(t testing.TB, what string, got, want []event.Event) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.ID == w.ID && g.StreamID == w.StreamID && g.Version == w.Version && g.Position == w.Position && g.Data == w.Data
	}
	if !same {
		t.Errorf("%s: got %d events %s, want %d %s", what, len(got), connPlaces(got), len(want), connPlaces(want))
	}
}

// faultProxy is a TCP proxy in front of PostgreSQL that breaks
// connections on cue: it can cut a connection right before or right after
// a write transaction's COMMIT reaches the server, refuse connections, and
// cut every connection at once.
type faultProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]struct{}
	actions []commitAction // for the next COMMITs, in order
	fired   chan commitAction
	// lateAnswer is the server's answer to the last lateCommit.
	lateAnswer []byte
	// releaseLate, closed by the test, lets a held lateCommit reach the
	// server.
	releaseLate chan struct{}
	// downAfter: go down (see setDown) as soon as an action has cut its
	// connection, before the client can connect again.
	downAfter bool
	wg        sync.WaitGroup
}

type commitAction int

const (
	// pass lets the COMMIT through (after a pause, so that appends made
	// meanwhile queue up behind its transaction).
	pass commitAction = iota + 1
	// loseAnswer lets the COMMIT reach the server, which commits, then
	// cuts the connection before the client hears the answer.
	loseAnswer
	// dropCommit cuts the connection instead of passing the COMMIT on:
	// the server rolls the transaction back.
	dropCommit
	// lateCommit cuts the client's side of the connection before passing
	// anything on, and passes the transaction to the server once the test
	// closes releaseLate (at most 30 s later): a transaction that runs on
	// after its client gave it up for lost.
	lateCommit
)

// commitBind marks the COMMIT of a write transaction in the client's
// bytes: the Bind message of the prepared statement "COMMIT", named as pgx
// names the statements it caches. A write transaction of the store sends
// it whenever it commits, on new and reused connections alike.
var commitBind = func() []byte {
	sum := sha256.Sum256([]byte("COMMIT"))
	return []byte("\x00stmtcache_" + hex.EncodeToString(sum[:24]) + "\x00")
}()

// readyForQuery is the server's ReadyForQuery message (any status), which
// ends its answer to a pipeline.
var readyForQuery = []byte("Z\x00\x00\x00\x05")

func newFaultProxy(t *testing.T, dsn string) *faultProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}, fired: make(chan commitAction, 16), releaseLate: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cutAll()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

// onCommits sets what happens to the next COMMITs, in order.
func (p *faultProxy) onCommits(actions ...commitAction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.actions = append(p.actions, actions...)
}

// await waits for the next action to fire and returns it.
func (p *faultProxy) await(t testing.TB) commitAction {
	t.Helper()
	select {
	case a := <-p.fired:
		return a
	case <-time.After(20 * time.Second):
		t.Fatalf("proxy: no COMMIT seen in 20s")
		return 0
	}
}

// setDown refuses (accepts and closes) new connections while down, and
// cuts the open ones when going down.
func (p *faultProxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.cutAll()
	}
}

// goDown goes down if downAfter is set.
func (p *faultProxy) goDown() {
	p.mu.Lock()
	down := p.downAfter
	p.mu.Unlock()
	if down {
		p.setDown(true)
	}
}

// cutAll closes every open connection at once.
func (p *faultProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *faultProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(client, server) })
	}
}

// pipe copies bytes both ways and applies the COMMIT actions.
func (p *faultProxy) pipe(client, server net.Conn) {
	var once sync.Once
	cut := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	defer cut()
	var mu sync.Mutex
	blackhole := false // the server's answers are dropped
	var dropped []byte
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				mu.Lock()
				bh := blackhole
				if bh {
					dropped = append(dropped, buf[:n]...)
				}
				mu.Unlock()
				if bh {
					if bytes.Contains(dropped, readyForQuery) {
						// The server has answered the whole pipeline;
						// the action cuts the connection.
						return
					}
					continue
				}
				if _, err := client.Write(buf[:n]); err != nil {
					cut()
					return
				}
			}
			if err != nil {
				cut()
				return
			}
		}
	})
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if bytes.Contains(chunk, commitBind) {
				p.mu.Lock()
				var a commitAction
				if len(p.actions) > 0 {
					a, p.actions = p.actions[0], p.actions[1:]
				}
				p.mu.Unlock()
				if a != 0 {
					p.fired <- a
				}
				switch a {
				case pass:
					time.Sleep(300 * time.Millisecond)
				case dropCommit:
					p.goDown()
					return
				case loseAnswer:
					mu.Lock()
					blackhole = true
					mu.Unlock()
					server.Write(chunk)
					wg.Wait()
					p.goDown()
					return
				case lateCommit:
					mu.Lock()
					blackhole = true
					mu.Unlock()
					client.Close()
					select {
					case <-p.releaseLate:
					case <-time.After(30 * time.Second):
					}
					server.Write(chunk)
					wg.Wait()
					p.mu.Lock()
					p.lateAnswer = dropped
					p.mu.Unlock()
					return
				}
			}
			if _, err := server.Write(chunk); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	cut()
	wg.Wait()
}

// The COMMIT of an append reaches the server, which commits, and the
// connection is lost before the answer comes back: the append is
// acknowledged with the events as stored, once.
func TestAppendCommitAnswerLost(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	p := newFaultProxy(t, d.DSN)
	s := d.open(t, p.addr())
	p.onCommits(loseAnswer)
	got, err := s.Append(t.Context(), "lost", event.NoStream, []any{connTick{Seq: 1}, connTick{Seq: 2}})
	if err != nil {
		t.Fatalf("Append() = %v, want the stored events", err)
	}
	if a := p.await(t); a != loseAnswer {
		t.Fatalf("proxy fired %v, want loseAnswer", a)
	}
	checkSame(t, "Append", got, readStream(t, d.direct(t), "lost"))
}

// The connection is cut instead of passing the COMMIT on: the
// transaction rolls back, the store writes the append again, once.
func TestAppendCommitNotSent(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	p := newFaultProxy(t, d.DSN)
	s := d.open(t, p.addr())
	p.onCommits(dropCommit)
	got, err := s.Append(t.Context(), "dropped", event.NoStream, []any{connTick{Seq: 1}})
	if err != nil {
		t.Fatalf("Append() = %v, want the stored events", err)
	}
	p.await(t)
	checkSame(t, "Append", got, readStream(t, d.direct(t), "dropped"))
}

// One group-commit transaction carries the appends of five callers, one
// of which fails its version check, and loses its connection after the
// COMMIT reached the server: every caller gets the right answer.
func TestGroupCommitAnswerLost(t *testing.T) {
	t.Parallel()
	for name, action := range map[string]commitAction{"answer lost": loseAnswer, "commit dropped": dropCommit} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newConnDB(t)
			p := newFaultProxy(t, d.DSN)
			s := d.open(t, p.addr())
			ctx := t.Context()
			mustAppendTo(t, d.direct(t), "g-1", event.NoStream, connTick{Seq: 0})

			// The first transaction is held up at its COMMIT while the
			// others queue behind it; they commit together next.
			p.onCommits(pass, action)
			first := make(chan error, 1)
			go func() {
				_, err := s.Append(ctx, "g-0", event.NoStream, []any{connTick{Seq: 0}})
				first <- err
			}()
			p.await(t)
			type result struct {
				events []event.Event
				err    error
			}
			calls := []struct {
				stream   string
				expected event.ExpectedVersion
			}{
				{"g-1", event.Exact(1)}, {"g-1", event.Exact(2)}, {"g-2", event.NoStream}, {"g-3", event.Any},
				{"g-1", event.Exact(7)}, // fails its check inside the lost transaction
			}
			results := make([]result, len(calls))
			var wg sync.WaitGroup
			for i, c := range calls {
				wg.Go(func() {
					// In order, so that the two appends to g-1 queue in
					// this order.
					time.Sleep(time.Duration(i) * 20 * time.Millisecond)
					evs, err := s.Append(ctx, c.stream, c.expected, []any{connTick{Writer: i, Seq: 1}})
					results[i] = result{evs, err}
				})
			}
			if a := p.await(t); a != action {
				t.Fatalf("proxy fired %v, want %v", a, action)
			}
			wg.Wait()
			if err := <-first; err != nil {
				t.Fatalf("first Append() = %v", err)
			}
			direct := d.direct(t)
			for i, c := range calls[:4] {
				if results[i].err != nil {
					t.Errorf("Append(%q, %v) = %v, want the stored events", c.stream, c.expected, results[i].err)
					continue
				}
				stored := readStream(t, direct, c.stream)
				at := slices.IndexFunc(stored, func(e event.Event) bool { return e.ID == results[i].events[0].ID })
				if at < 0 {
					t.Errorf("Append(%q, %v) = %s, not stored", c.stream, c.expected, connPlaces(results[i].events))
					continue
				}
				checkSame(t, fmt.Sprintf("Append(%q, %v)", c.stream, c.expected), results[i].events, stored[at:at+1])
			}
			if err := results[4].err; !errors.Is(err, event.ErrVersionConflict) {
				t.Errorf("Append(%q, %v) = %v, want a version conflict", calls[4].stream, calls[4].expected, err)
			}
			if n := len(readStream(t, direct, "g-1")); n != 3 {
				t.Errorf("stream g-1 holds %d events, want 3", n)
			}
		})
	}
}

// The append's connection is lost before its transaction reaches the
// server, and the transaction reaches the server after the store has
// written the append again: the late transaction fails (on the unique
// index of event IDs, since the append was written again with the same
// IDs), and the events are stored once.
func TestAppendLateTransaction(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	p := newFaultProxy(t, d.DSN)
	s := d.open(t, p.addr())
	mustAppendTo(t, d.direct(t), "late", event.NoStream, connTick{Seq: 0})
	p.onCommits(lateCommit)
	got, err := s.Append(t.Context(), "late", event.Any, []any{connTick{Seq: 1}})
	if err != nil {
		t.Fatalf("Append() = %v, want the stored events", err)
	}
	p.await(t)
	// The append was written again on another connection: only now does
	// the first transaction reach the server. (A fixed pause here let a
	// slow retry come second now and then; the late transaction then
	// committed, and the retry found its events.)
	close(p.releaseLate)
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		answer := p.lateAnswer
		p.mu.Unlock()
		if answer != nil {
			// ReadyForQuery in a failed transaction block: the late
			// transaction failed (on the unique index of event IDs, or
			// cancelled by the driver that gave its connection up).
			if !bytes.HasSuffix(answer, []byte("Z\x00\x00\x00\x05E")) {
				t.Errorf("the late transaction was answered %q, want it to fail", answer)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late transaction got no answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stored := readStream(t, d.direct(t), "late")
	if len(stored) != 2 {
		t.Fatalf("stream holds %s, want 2 events", connPlaces(stored))
	}
	checkSame(t, "Append", got, stored[1:])
}

// The connection is lost after the COMMIT, and the database stays out of
// reach until the append's context ends: the append fails with an
// *OutcomeUnknownError that carries its event IDs and matches
// ErrUnavailable; appending again with those IDs returns the stored
// events, and nothing is stored twice.
func TestAppendOutcomeUnknown(t *testing.T) {
	t.Parallel()
	for name, action := range map[string]commitAction{"committed": loseAnswer, "rolled back": dropCommit} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newConnDB(t)
			p := newFaultProxy(t, d.DSN)
			s := d.open(t, p.addr())
			if _, err := s.Head(t.Context()); err != nil { // the store's schema, read once
				t.Fatal(err)
			}
			p.mu.Lock()
			p.downAfter = true
			p.mu.Unlock()
			p.onCommits(action)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			data := []any{connTick{Seq: 1}, connTick{Seq: 2}}
			_, err := s.Append(ctx, "unknown", event.NoStream, data)
			var u *eventstore.OutcomeUnknownError
			if !errors.As(err, &u) {
				t.Fatalf("Append() = %v, want an *OutcomeUnknownError", err)
			}
			checkUnavailable(t, "Append", err)
			if len(u.IDs) != 2 {
				t.Fatalf("OutcomeUnknownError.IDs = %v, want 2 IDs", u.IDs)
			}
			t.Logf("Append() = %v", err)

			if a := p.await(t); a != action {
				t.Fatalf("proxy fired %v, want %v", a, action)
			}
			p.mu.Lock()
			p.downAfter = false
			p.mu.Unlock()
			p.setDown(false)
			got, err := s.Append(t.Context(), "unknown", event.NoStream, data, event.WithIDs(u.IDs...))
			if err != nil {
				t.Fatalf("Append(WithIDs) again = %v, want the events", err)
			}
			stored := readStream(t, d.direct(t), "unknown")
			checkSame(t, "Append again", got, stored)
			if stored[0].ID != u.IDs[0] || stored[1].ID != u.IDs[1] {
				t.Errorf("stored IDs %s, %s, want %v", stored[0].ID, stored[1].ID, u.IDs)
			}
		})
	}
}

// No connection can be made: the append fails with an error matching
// ErrUnavailable that is not an *OutcomeUnknownError (nothing can have
// been stored); reads fail with typed errors too.
func TestUnavailableDatabase(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	p := newFaultProxy(t, d.DSN)
	s := d.open(t, p.addr())
	p.setDown(true)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Append(ctx, "down", event.NoStream, []any{connTick{}})
	checkUnavailable(t, "Append", err)
	if u := (*eventstore.OutcomeUnknownError)(nil); errors.As(err, &u) {
		t.Errorf("Append() = %v, want no *OutcomeUnknownError: nothing reached the server", err)
	}
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Errorf("Append() = %v, want the *pgconn.ConnectError as its cause", err)
	}
	t.Logf("Append() = %v", err)

	_, err = s.Head(t.Context())
	checkUnavailable(t, "Head", err)
	_, _, err = s.LoadPosition(t.Context(), "projector")
	checkUnavailable(t, "LoadPosition", err)
	for _, err := range s.ReadStream(t.Context(), "down", 0, 0) {
		checkUnavailable(t, "ReadStream", err)
	}
	p.setDown(false)
	if n := len(readStream(t, d.direct(t), "down")); n != 0 {
		t.Errorf("stream holds %d events after a failed append, want 0", n)
	}
}

// A live subscription loses all its connections, and the database is out
// of reach for a while: it reconnects on its own and yields every event
// once, in order.
func TestSubscriptionReconnects(t *testing.T) {
	t.Parallel()
	d := newConnDB(t)
	p := newFaultProxy(t, d.DSN)
	s := d.open(t, p.addr())
	direct := d.direct(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var want []event.Event
	want = append(want, mustAppendTo(t, direct, "sub", event.NoStream, connTick{Seq: 0})...)
	next := make(chan event.Event)
	go func() {
		for e, err := range s.Subscribe(ctx, 0) {
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("Subscribe() yielded %v", err)
				}
				close(next)
				return
			}
			next <- e
		}
	}()
	recv := func() event.Event {
		t.Helper()
		select {
		case e, ok := <-next:
			if !ok {
				t.FailNow()
			}
			return e
		case <-time.After(20 * time.Second):
			t.Fatalf("no event in 20s")
			return event.Event{}
		}
	}
	var got []event.Event
	got = append(got, recv())
	for round := range 3 {
		p.setDown(true)
		want = append(want, mustAppendTo(t, direct, "sub", event.Any, connTick{Seq: 2*round + 1})...)
		time.Sleep(300 * time.Millisecond)
		want = append(want, mustAppendTo(t, direct, "sub", event.Any, connTick{Seq: 2*round + 2})...)
		p.setDown(false)
		got = append(got, recv(), recv())
	}
	cancel()
	checkSame(t, "Subscribe", got, want)
}

func mustAppendTo(t testing.TB, s *eventstore.Store, stream string, expected event.ExpectedVersion, data ...any) []event.Event {
	t.Helper()
	got, err := s.Append(t.Context(), stream, expected, data)
	if err != nil {
		t.Fatalf("Append(%q, %v) = %v", stream, expected, err)
	}
	return got
}

func readStream(t testing.TB, s *eventstore.Store, stream string) []event.Event {
	t.Helper()
	var out []event.Event
	for e, err := range s.ReadStream(t.Context(), stream, 0, 0) {
		if err != nil {
			t.Fatalf("ReadStream(%q) = %v", stream, err)
		}
		out = append(out, e)
	}
	return out
}

// connPlaces describes events by stream, version and position.
func connPlaces(evs []event.Event) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s@%d#%d", e.StreamID, e.Version, e.Position)
	}
	b.WriteByte(']')
	return b.String()
}
