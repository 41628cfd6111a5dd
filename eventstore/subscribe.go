package eventstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"iter"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
)

// Subscribe yields the events with a position after the given one, in
// position order, optionally only those of the given types: first those
// stored already, then new ones as they are committed, until ctx ends. It
// then yields ctx's error with a zero Event and stops. A read error also
// ends it, yielded the same way.
//
// New events are noticed at once when they are appended through this Store
// or, on PostgreSQL, through any store on the database (LISTEN/NOTIFY);
// otherwise within Options.PollInterval. Every event is delivered exactly
// once and in order, whatever the number of concurrent writers: the store
// commits events in position order (under [OrderingXID], reads only below
// the oldest running transaction), and the subscription never assumes
// positions are contiguous.
//
// A subscription outlives lost connections: when a read fails with an
// error matching [ErrUnavailable], it logs it and reads again, on a new
// connection, from the last event it yielded; it yields the error only when
// the database has stayed out of reach for half a minute.
func (s *Store) Subscribe(ctx context.Context, after int64, types ...string) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		for b, err := range s.SubscribeBatches(ctx, after, s.opts.PageSize, types...) {
			if err != nil {
				yield(event.Event{}, err)
				return
			}
			for _, e := range b.Events {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// SubscribeBatches is [Store.Subscribe] a batch at a time, for readers
// that commit work per batch (event stream processors): each batch holds up
// to limit events, and its Through position says how far the read went. A
// batch may hold no events when the read only passed events of other types
// (so a filtered reader's position still advances); a read that finds
// nothing new yields nothing.
func (s *Store) SubscribeBatches(ctx context.Context, after int64, limit int, types ...string) iter.Seq2[event.Batch, error] {
	return s.subscribeBatches(ctx, event.StreamFilter{}, after, limit, types)
}

// subscribeBatches is SubscribeBatches of the streams f selects.
func (s *Store) subscribeBatches(ctx context.Context, f event.StreamFilter, after int64, limit int, types []string) iter.Seq2[event.Batch, error] {
	return func(yield func(event.Batch, error) bool) {
		fail := func(err error) {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = fail("subscribe after "+strconv.FormatInt(after, 10), "", "", err)
			}
			yield(event.Batch{}, err)
		}
		if limit < 1 {
			fail(invalid("batch limit %d, want 1 or more", limit))
			return
		}
		wake := s.newWaker()
		defer wake.stop()
		retry := reconnect{log: s.opts.Logger}
		last := after
		for {
			// Take the wake-up channels before reading, so a commit that
			// lands during the read is not missed.
			wake.arm()
			for {
				b, err := s.readBatch(ctx, f, last, limit, types)
				if err != nil {
					// Deliver the events before a bad one, then the error.
					if len(b.Events) > 0 && !yield(event.Batch{Events: b.Events, Through: b.Through}, nil) {
						return
					}
					if len(b.Events) > 0 {
						last = b.Through
					}
					if retry.again(ctx, err) {
						continue
					}
					fail(err)
					return
				}
				retry.tries = 0
				if b.Through == last && len(b.Events) == 0 {
					break
				}
				last = b.Through
				if !yield(b, nil) {
					return
				}
				if len(b.Events) < limit {
					break
				}
			}
			if err := wake.wait(ctx); err != nil {
				yield(event.Batch{}, err)
				return
			}
		}
	}
}

// ReadBatch reads up to limit events with a position after the given one,
// in position order, optionally only those of the given types, and reports
// in Through how far the read went: when it found fewer than limit events,
// it covered everything stored up to the head it saw, so Through is that
// head even if the last events of it were of other types. Through never
// goes below after.
//
// This relies on the store's commit order: once a position is readable,
// every lower position is committed or never will be. Under
// [OrderingXID], the head is the newest readable position (see
// [Store.Head]).
func (s *Store) ReadBatch(ctx context.Context, after int64, limit int, types ...string) (event.Batch, error) {
	return s.readBatch(ctx, event.StreamFilter{}, after, limit, types)
}

// readBatch is ReadBatch of the streams f selects.
func (s *Store) readBatch(ctx context.Context, f event.StreamFilter, after int64, limit int, types []string) (event.Batch, error) {
	op := "read batch after " + strconv.FormatInt(after, 10)
	if after < 0 || limit < 1 {
		return event.Batch{}, fail(op, "", "", invalid("limit %d, want 1 or more", limit))
	}
	for _, t := range types {
		if err := validText("type name", t); err != nil {
			return event.Batch{}, fail(op, "", "", err)
		}
	}
	if s.hz == nil {
		return s.readBatchWithHead(ctx, f, after, limit, types)
	}
	head, err := s.Head(ctx)
	if err != nil {
		return event.Batch{}, fail(op, "", "", err)
	}
	b := event.Batch{Through: after}
	if head <= after {
		return b, nil
	}
	tf := typesOf(types)
	args := tf.appendArgs(append(make([]any, 0, len(types)+4), after, head))
	if !f.All() {
		args = appendFilterArgs(args, f)
	}
	query := s.q.readBatchOfSQL(tf, f)
	args = append(args, limit)
	page, err := s.readPage(ctx, readOfBatch, query, args)
	if len(page) > 0 {
		b.Events = page
		b.Through = page[len(page)-1].Position
	}
	if err != nil {
		// The events before the failing one are valid; the caller sees
		// them with the error, as from the other reads.
		return b, fail("read batch after "+strconv.FormatInt(b.Through, 10), "", "", err)
	}
	if len(page) < limit {
		b.Through = head
	}
	return b, nil
}

// signal wakes every waiter at once: wait returns a channel that the next
// broadcast closes.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// pgListener holds one LISTEN connection per Store while any subscription
// runs, and turns notifications into wake-ups. It is a hint only:
// subscriptions poll as well, and re-read after every (re)connection.
type pgListener struct {
	names *pgNames
	log   *slog.Logger
	dsn   string  // empty: borrow a pooled connection instead
	sig   *signal // broadcast at each notification and (re)LISTEN
	// channel returns the channel to LISTEN on: the events' by default.
	channel func(ctx context.Context) (string, error)
	// linger is how long the listener stays up once the last holder has
	// given it back (see positionsListener); zero stops it at once.
	linger time.Duration

	mu     sync.Mutex
	refs   int
	cancel context.CancelFunc // nil when not running
	done   chan struct{}
	idle   *time.Timer // stops a lingering listener
	gen    int         // counts the releases that left it idle
}

func newPGListener(names *pgNames, db *gorm.DB, log *slog.Logger) *pgListener {
	l := &pgListener{names: names, log: log, sig: new(signal)}
	l.channel = func(ctx context.Context) (string, error) {
		keys, err := names.get(ctx)
		return keys.channel, err
	}
	if d, ok := db.Dialector.(*postgres.Dialector); ok && d.Config != nil && d.Config.Conn == nil {
		l.dsn = d.Config.DSN
	}
	return l
}

// acquire starts the listener if it is not running and returns the
// function that gives it back; the last one to give it back stops it and
// waits for its goroutine (or, with a linger, has a timer do so later).
func (l *pgListener) acquire() (release func()) {
	l.mu.Lock()
	l.refs++
	if l.idle != nil {
		l.idle.Stop()
		l.idle = nil
	}
	if l.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go l.run(ctx, l.done)
	}
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.refs--
			if l.refs > 0 {
				l.mu.Unlock()
				return
			}
			if l.linger > 0 {
				l.gen++
				gen := l.gen
				l.idle = time.AfterFunc(l.linger, func() { l.stopIdle(gen) })
				l.mu.Unlock()
				return
			}
			l.stopLocked()
		})
	}
}

// stopIdle stops the listener if it has stayed idle since the release
// numbered gen.
func (l *pgListener) stopIdle(gen int) {
	l.mu.Lock()
	if l.refs > 0 || l.gen != gen || l.cancel == nil {
		l.mu.Unlock()
		return
	}
	l.idle = nil
	l.stopLocked()
}

// stopLocked stops the running listener, with l.mu held, which it
// unlocks, and waits for its goroutine.
func (l *pgListener) stopLocked() {
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	cancel()
	<-done
}

func (l *pgListener) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	log := l.log.With("component", "eventstore.listener")
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		log.WarnContext(ctx, "LISTEN connection lost; polling until it is back", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen runs one LISTEN connection until it fails or ctx ends.
func (l *pgListener) listen(ctx context.Context) error {
	channel, err := l.channel(ctx)
	if err != nil {
		return err
	}
	loop := func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
			return err
		}
		// Anything committed before LISTEN took effect sent no
		// notification this connection saw: have subscribers re-read.
		l.sig.broadcast()
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				return err
			}
			l.sig.broadcast()
		}
	}
	if l.dsn != "" {
		c, err := pgx.Connect(ctx, l.dsn)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		return loop(c)
	}
	// No DSN to open a connection of our own: hold one of the pool's for
	// as long as the listener runs, and make the pool drop it afterwards
	// (it is still registered as a listener).
	err = rawPgx(ctx, l.names.db, func(c *pgx.Conn) error {
		err := loop(c)
		return errors.Join(err, driver.ErrBadConn)
	})
	return err
}

// waker is what a subscription waits on between reads: a commit in this
// process, a notification from another (PostgreSQL, while the store
// listens), or the poll interval.
type waker struct {
	s             *Store
	pgWake        func() <-chan struct{}
	release       func()
	ticker        *time.Ticker
	local, remote <-chan struct{}
}

// newWaker returns a waker for a subscription, which calls stop when it
// ends.
func (s *Store) newWaker() *waker {
	w := &waker{s: s, ticker: time.NewTicker(s.opts.PollInterval)}
	if s.pg != nil {
		w.release = s.pg.acquire()
		w.pgWake = s.pg.sig.wait
	}
	return w
}

// arm takes the wake-up channels. Call it before each read, so that a
// commit (or a deletion) that lands during the read is not missed.
func (w *waker) arm() {
	w.local, w.remote = w.s.wake.wait(), nil
	if w.pgWake != nil {
		w.remote = w.pgWake()
	}
}

// wait returns after a wake-up since the last arm or a tick of the poll
// interval, or with ctx's error when ctx ends first.
func (w *waker) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.local:
	case <-w.remote:
	case <-w.ticker.C:
	}
	return nil
}

func (w *waker) stop() {
	w.ticker.Stop()
	if w.release != nil {
		w.release()
	}
}
