package storetest

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/cairnhq/cairn/event"
)

// TestOrderReportCounts checks how a reader's events are counted against
// the acknowledged ones: the counts are what verify-order reports.
func TestOrderReportCounts(t *testing.T) {
	ev := func(pos int64) event.Event {
		return event.Event{Position: pos, ID: uuid.NewSHA1(uuid.Nil, []byte{byte(pos)})}
	}
	r := &OrderReport{acked: []event.Event{ev(1), ev(2), ev(4), ev(5)}, Written: 4}
	r.add("good", []event.Event{ev(1), ev(2), ev(4), ev(5)})
	r.add("bad", []event.Event{ev(1), ev(4), ev(2), ev(4), ev(9)})
	if got := r.Readers[0]; !got.OK() || got.Received != 4 {
		t.Errorf("good reader = %+v, want OK with 4 received", got)
	}
	want := ReaderReport{Name: "bad", Received: 5, Skipped: 1, Repeated: 1, OutOfOrder: 1, Unexpected: 1}
	if got := r.Readers[1]; got != want {
		t.Errorf("bad reader = %+v, want %+v", got, want)
	}
	if err := r.Err(); !errors.Is(err, ErrOrder) {
		t.Errorf("Err() = %v, want ErrOrder", err)
	}
	r.Readers = r.Readers[:1]
	if err := r.Err(); err != nil {
		t.Errorf("Err() with only good readers = %v, want nil", err)
	}
}
