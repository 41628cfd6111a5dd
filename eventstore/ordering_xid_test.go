package eventstore_test

import (
	"context"
	"iter"
	"os"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/storetest"
	"github.com/cairnhq/cairn/internal/testdb"
)

// skipWithoutPostgres skips t when no PostgreSQL server is configured.
func skipWithoutPostgres(t *testing.T) {
	t.Helper()
	if os.Getenv(testdb.EnvPostgres) == "" {
		t.Skipf("%s not set", testdb.EnvPostgres)
	}
}

// xidConfig is the conformance suite's configuration under OrderingXID.
// The horizon is the whole cluster's, which other tests share: reads wait
// for it for up to half a minute, so that a busy server does not make a
// read that follows an append miss it.
func xidConfig(events int) storetest.Config {
	return storetest.Config{
		NewDatabase:    func(t testing.TB) string { return testdb.NewDSN(t, testdb.Postgres) },
		Open:           eventstore.OpenPostgres,
		Options:        eventstore.Options{Ordering: eventstore.OrderingXID, HorizonWait: 30 * time.Second},
		OrderingEvents: events,
		Parallel:       true,
	}
}

// The ordering check across processes bites: subscribers that read in
// position order without the horizon of OrderingXID skip events, where
// the store's own subscriptions (the conformance suite's part
// global_order_holds_across_processes) skip none.
func TestOrderingNegativeControl(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	rep := storetest.CheckOrder(t, xidConfig(8000), storetest.OrderCheck{
		Subscribe: func(ctx context.Context, s *eventstore.Store, after int64) iter.Seq2[event.Event, error] {
			return s.SubscribeIgnoringHorizon(ctx, after)
		},
		Stall: 5 * time.Second,
	})
	t.Logf("reading without the horizon: %v", rep)
	if rep.Skipped == 0 {
		t.Errorf("reading without the horizon: %v; want skipped events: the check does not bite", rep)
	}
}
