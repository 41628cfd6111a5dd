package processing_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// A processor that starts from the head handles only the events stored
// after it was first registered; restarted after more events were stored
// while it was down, it handles those (it never jumps to the new head).
func TestStartFromHead(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		registered := testkit.Fill(t, s, 300, 7, 30)
		opts := processing.Options{Start: processing.FromHead(), ErrorHandler: processing.NoRetry{}, BatchSize: 40}

		rec := &recorder{}
		p := newProcessor(t, s, "from-head", rec, opts) // Migrate registers it
		testkit.Fill(t, s, 25, 3, 5)
		stop := testkit.RunInBackground(t, p)
		head := testkit.Head(t, s)
		testkit.WaitFor(t, p, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := positionsBetween(t, s, registered, head)
		if got := rec.positions(); !slices.Equal(got, want) {
			t.Errorf("handled %v, want the %d events after the head %d at registration", got, len(want), registered)
		}

		// Down while events are stored: they are handled after the restart.
		down := head
		testkit.Fill(t, s, 25, 3, 5)
		rec = &recorder{}
		p = newProcessor(t, s, "from-head", rec, opts)
		testkit.RunInBackground(t, p)
		head = testkit.Head(t, s)
		testkit.WaitFor(t, p, head)
		if got, want := rec.positions(), positionsBetween(t, s, down, head); !slices.Equal(got, want) {
			t.Errorf("after a restart: handled %v, want the events stored while it was down %v", got, want)
		}
	})
}

// A processor that starts after a position handles the events after it,
// and its start is recorded at its first run when it was not migrated.
func TestStartAfter(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 100, 4, 10)
		after := head / 2
		rec := &recorder{}
		p, err := processing.New(s, "after", rec, processing.Options{Start: processing.After(after), Logger: testdb.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		if got, want := rec.positions(), positionsBetween(t, s, after, head); !slices.Equal(got, want) {
			t.Errorf("handled %v, want %v", got, want)
		}
	})
}

func TestStartInvalid(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	for _, opts := range []processing.Options{
		{Start: processing.After(-1)},
		{Streams: event.StreamFilter{ID: "a", Prefix: "b"}},
		{Middleware: []processing.Middleware{nil}},
		{Middleware: []processing.Middleware{processing.Timeout(1)}}, // needs typed handlers
	} {
		if _, err := processing.New(s, "bad", &recorder{}, opts); !errors.Is(err, processing.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", opts, err)
		}
	}
}

// positionsBetween returns the positions of the events in (from, to].
func positionsBetween(t testing.TB, s *eventstore.Store, from, to int64) []int64 {
	t.Helper()
	var out []int64
	for _, e := range testkit.MustCollect(t, "ReadAll", s.ReadAll(t.Context(), from, 0)) {
		if e.Position <= to {
			out = append(out, e.Position)
		}
	}
	return out
}
