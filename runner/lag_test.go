package runner_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// Under eventstore.OrderingXID consecutive events lie 65,536 or more
// positions apart: the runner reports lags in events all the same, and a
// processor at the head as live.
func TestLagInEventsUnderXID(t *testing.T) {
	t.Parallel()
	if os.Getenv(testdb.EnvPostgres) == "" {
		t.Skipf("%s not set", testdb.EnvPostgres)
	}
	db := testdb.New(t, testdb.Postgres)
	s := testkit.MigratedStore(t, db.Gorm, testkit.NewRegistry(), eventstore.Options{
		Ordering: eventstore.OrderingXID, HorizonWait: 30 * time.Second, PollInterval: 50 * time.Millisecond})
	head := testkit.Fill(t, s, 300, 10, 7)
	p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{
		Processing: processing.Options{Logger: testdb.Logger(t)}})
	r, err := runner.New(s, runner.Options{Logger: testdb.Logger(t)}, p)
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Status(t.Context()).Processors[0]; st.Lag != 300 || st.Head != head || st.Position != 0 {
		t.Errorf("before it runs: %+v, want position 0, head %d, lag 300 events", st, head)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := p.WaitFor(t.Context(), head); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the processor reported live with no lag", func() bool {
		st := r.Status(t.Context()).Processors[0]
		return st.State == runner.Live && st.Lag == 0 && st.Position == head
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
}
