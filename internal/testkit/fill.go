package testkit

import (
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
)

// DomainStore returns a migrated store over db with the domain's registry
// ([NewRegistry]), logging to [Logger](t) and polling every 50ms, which
// is what the processor tests use.
func DomainStore(t testing.TB, db *gorm.DB) *eventstore.Store {
	t.Helper()
	return MigratedStore(t, db, NewRegistry(), eventstore.Options{PollInterval: 50 * time.Millisecond})
}

// Fill appends n events to the streams acct-0 … acct-(streams-1), chunk
// events per append, the streams in turn: every seventh event a note,
// every fifth (of the others) a withdrawal of 1…3, the rest deposits of
// 1…9 (see [Deposits]). Every other append has a correlation ID. It
// returns the position of the last event.
func Fill(t testing.TB, s *eventstore.Store, n, streams, chunk int) int64 {
	t.Helper()
	var last int64
	for k, a := 0, 0; k < n; a++ {
		stream := fmt.Sprintf("acct-%d", a%streams)
		batch := make([]any, 0, chunk)
		for ; len(batch) < chunk && k < n; k++ {
			batch = append(batch, fillEvent(k))
		}
		var opts []event.AppendOption
		if a%2 == 0 {
			opts = append(opts, event.WithCorrelationID(fmt.Sprintf("request-%d", a)))
		}
		evs := MustAppend(t, s, stream, event.Any, batch, opts...)
		last = evs[len(evs)-1].Position
	}
	return last
}

// fillEvent is the k-th event of a Fill.
func fillEvent(k int) any {
	switch {
	case k%7 == 6:
		return Noted{Text: "n"}
	case k%5 == 4:
		return Withdrawn{Amount: k%3 + 1}
	default:
		return Deposited{Amount: k%9 + 1}
	}
}

// Deposits returns how many of the events of a Fill of n are deposits.
func Deposits(n int) int {
	d := 0
	for k := range n {
		if _, ok := fillEvent(k).(Deposited); ok {
			d++
		}
	}
	return d
}
