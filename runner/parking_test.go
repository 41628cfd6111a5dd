package runner_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/runner"
)

// TestStatusParked: the status of a parking projector shows its parked
// events' count and the age of the oldest, as Go values and in JSON, in
// the runner that owns it and in one that stands by; a retry elsewhere
// shows in both after a heartbeat or a poll.
func TestStatusParked(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		s := testkit.DomainStore(t, db.Gorm)
		head := testkit.Fill(t, s, 100, 4, 5)
		newProjector := func(fail bool) runner.Processor {
			o := testkit.AccountsOptions{Processing: processing.Options{Park: true, ErrorHandler: processing.NoRetry{}}}
			if fail {
				o.Fail = func(e event.Event) error {
					if e.StreamID == "acct-2" && e.Version >= 10 {
						return errors.New("poisoned")
					}
					return nil
				}
			}
			return testkit.AccountsProjector(t, s, "accounts", "accounts", o)
		}
		own := processing.Ownership{LeaseDuration: 3 * time.Second, HeartbeatInterval: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond}
		owner, err := runner.New(s, runner.Options{Logger: testdb.Logger(t), Ownership: own}, newProjector(true))
		if err != nil {
			t.Fatal(err)
		}
		testkit.RunInBackground(t, owner)
		testkit.Eventually(t, 30*time.Second, "the owner to reach the head", func() bool {
			return processorStatus(t, owner.Status(t.Context()), "accounts").Position == head
		})
		standby, err := runner.New(s, runner.Options{Logger: testdb.Logger(t), Ownership: own}, newProjector(true))
		if err != nil {
			t.Fatal(err)
		}
		testkit.RunInBackground(t, standby)

		var want int
		for e, err := range s.ReadAll(t.Context(), 0, 0, testkit.TypeDeposited, testkit.TypeWithdrawn) {
			if err != nil {
				t.Fatal(err)
			}
			if e.StreamID == "acct-2" && e.Version >= 10 {
				want++
			}
		}
		for _, r := range []*runner.Runner{owner, standby} {
			testkit.Eventually(t, 30*time.Second, "the parked count in the status", func() bool {
				return processorStatus(t, r.Status(t.Context()), "accounts").Parked == want
			})
			ps := processorStatus(t, r.Status(t.Context()), "accounts")
			if ps.OldestParkedAge <= 0 || ps.OldestParkedAge > time.Minute {
				t.Errorf("oldest parked age %v; want a few seconds at most", ps.OldestParkedAge)
			}
		}
		if st := processorStatus(t, standby.Status(t.Context()), "accounts").State; st != runner.Standby {
			t.Errorf("second runner: state %v; want standby", st)
		}

		srv := httptest.NewServer(owner.Handler())
		defer srv.Close()
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Processors []map[string]any `json:"processors"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := body.Processors[0]
		if p["parked"] != float64(want) {
			t.Errorf("JSON parked = %#v; want %d", p["parked"], want)
		}
		if age, ok := p["oldest_parked_age_seconds"].(float64); !ok || age < 0 {
			t.Errorf("JSON oldest_parked_age_seconds = %#v; want a number", p["oldest_parked_age_seconds"])
		}

		// A retry by another instance (the admin, say): both runners see
		// the count drop.
		fixed := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Park: true}})
		if n, err := fixed.RetryParked(t.Context(), "acct-2"); err != nil || n != want {
			t.Fatalf("RetryParked = %d, %v; want %d, nil", n, err, want)
		}
		for _, r := range []*runner.Runner{owner, standby} {
			testkit.Eventually(t, 30*time.Second, "no parked events in the status", func() bool {
				ps := processorStatus(t, r.Status(t.Context()), "accounts")
				return ps.Parked == 0 && ps.OldestParkedAge == 0
			})
		}
		checkAccounts := testkit.ReadAccounts(t, db.Gorm, "accounts")
		testkit.CheckAccounts(t, checkAccounts, testkit.FoldAccounts(t, s, 0))
	})
}
