package processing_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// A processor limited to one stream or a category handles exactly the
// events of those streams (of its types), catch-up and live, and its
// position moves to the head past the others.
func TestStreamsFilter(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		testkit.Fill(t, s, 600, 13, 7) // acct-0 … acct-12
		for _, tc := range []struct {
			filter event.StreamFilter
			types  []string
		}{
			{event.OneStream("acct-1"), nil},
			{event.Category("acct-1"), nil}, // acct-1, acct-10, acct-11, acct-12
			{event.Category("acct-1"), []string{testkit.TypeDeposited}},
		} {
			name := fmt.Sprint(tc.filter, " ", tc.types)
			t.Run(name, func(t *testing.T) {
				rec := &recorder{types: tc.types}
				p := newProcessor(t, s, "filtered "+name, rec, processing.Options{Streams: tc.filter, BatchSize: 16, ErrorHandler: processing.NoRetry{}})
				testkit.RunInBackground(t, p)
				testkit.WaitFor(t, p, testkit.Head(t, s))
				testkit.Fill(t, s, 60, 13, 3) // live
				head := testkit.Head(t, s)
				testkit.WaitFor(t, p, head)
				var want []int64
				for _, e := range testkit.MustCollect(t, "ReadAll", s.ReadAll(t.Context(), 0, 0)) {
					if tc.filter.Match(e.StreamID) && (tc.types == nil || slices.Contains(tc.types, e.Type)) {
						want = append(want, e.Position)
					}
				}
				if got := rec.positions(); !slices.Equal(got, want) {
					t.Errorf("handled %d events %v, want %d: %v", len(got), got, len(want), want)
				}
				if st := p.Status(); st.Position != head {
					t.Errorf("position %d, want the head %d", st.Position, head)
				}
			})
		}
	})
}
