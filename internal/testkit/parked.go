package testkit

import (
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// ParkedPositions returns the positions of the parked events of the
// processor, failing t on error.
func ParkedPositions(t testing.TB, s *eventstore.Store, processor string) map[int64]event.Parked {
	t.Helper()
	rows, err := s.ParkedEvents(t.Context(), processor, "", 0)
	if err != nil {
		t.Fatalf("ParkedEvents(%q) = %v", processor, err)
	}
	out := make(map[int64]event.Parked, len(rows))
	for _, r := range rows {
		out[r.Position] = r
	}
	return out
}

// FoldAccountsWithout computes the accounts projection, as
// [FoldAccounts] does, from the store's events up to position through
// (0: all of them) but those at the positions of skip: what a parking
// projector that has reached through shows while those events are
// parked.
func FoldAccountsWithout[V any](t testing.TB, s *eventstore.Store, through int64, skip map[int64]V) map[string]Account {
	t.Helper()
	want := make(map[string]Account)
	for e, err := range s.ReadAll(t.Context(), 0, 0) {
		if err != nil {
			t.Fatalf("ReadAll() = %v", err)
		}
		if through > 0 && e.Position > through {
			break
		}
		if _, skipped := skip[e.Position]; skipped {
			continue
		}
		a := want[e.StreamID]
		switch d := e.Data.(type) {
		case Deposited:
			a.Balance += d.Amount
		case Withdrawn:
			a.Balance -= d.Amount
		default:
			continue
		}
		a.Events++
		want[e.StreamID] = a
	}
	return want
}
