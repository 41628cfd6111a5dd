package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
// commits events in position order, and the subscription never assumes
// positions are contiguous.
func (s *Store) Subscribe(ctx context.Context, after int64, types ...string) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) {
		var pgWake func() <-chan struct{}
		if s.pg != nil {
			release := s.pg.acquire()
			defer release()
			pgWake = s.pg.sig.wait
		}
		ticker := time.NewTicker(s.opts.PollInterval)
		defer ticker.Stop()
		last := after
		for {
			// Take the wake-up channels before reading, so a commit that
			// lands during the read is not missed.
			local := s.wake.wait()
			var remote <-chan struct{}
			if pgWake != nil {
				remote = pgWake()
			}
			stopped, failed := false, false
			last, _ = s.readAll(ctx, last, 0, types,
				func(e event.Event) bool {
					if !yield(e, nil) {
						stopped = true
						return false
					}
					return true
				},
				func(err error) {
					failed = true
					if ctx.Err() != nil {
						err = ctx.Err()
					} else {
						err = fmt.Errorf("eventstore: subscribe after %d: %w", last, err)
					}
					yield(event.Event{}, err)
				})
			if stopped || failed {
				return
			}
			select {
			case <-ctx.Done():
				yield(event.Event{}, ctx.Err())
				return
			case <-local:
			case <-remote:
			case <-ticker.C:
			}
		}
	}
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
	s   *Store
	dsn string // empty: borrow a pooled connection instead
	sig signal

	mu     sync.Mutex
	refs   int
	cancel context.CancelFunc
	done   chan struct{}
}

func newPGListener(s *Store, db *gorm.DB) *pgListener {
	l := &pgListener{s: s}
	if d, ok := db.Dialector.(*postgres.Dialector); ok && d.Config != nil && d.Config.Conn == nil {
		l.dsn = d.Config.DSN
	}
	return l
}

// acquire starts the listener if it is not running and returns the
// function that gives it back; the last one to give it back stops it and
// waits for its goroutine.
func (l *pgListener) acquire() (release func()) {
	l.mu.Lock()
	l.refs++
	if l.refs == 1 {
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
			cancel, done := l.cancel, l.done
			l.mu.Unlock()
			cancel()
			<-done
		})
	}
}

func (l *pgListener) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	log := l.s.opts.Logger.With("component", "eventstore.listener")
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
	keys, err := l.s.pgNames.get(ctx, l.s)
	if err != nil {
		return err
	}
	loop := func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{keys.channel}.Sanitize()); err != nil {
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
	err = rawPgx(ctx, l.s.db, func(c *pgx.Conn) error {
		err := loop(c)
		return errors.Join(err, errBadConn)
	})
	return err
}
