package admin_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/admin"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

// TestRepartitionCommand re-partitions a stopped projector from the
// command line: its partitions start at its saved position.
func TestRepartitionCommand(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		dsn := testdb.NewDSN(t, kind)
		cfg := bankConfig(t, kind, dsn, testkit.NewRegistry)
		if _, errOut, code := run(t, cfg, "migrate"); code != 0 {
			t.Fatalf("migrate: exit %d: %s", code, errOut)
		}
		db, err := testdb.Open(kind, dsn)
		if err != nil {
			t.Fatal(err)
		}
		testkit.CloseWhenDone(t, db)
		s := testkit.NewStore(t, db, testkit.NewRegistry(), eventstore.Options{})
		head := testkit.Fill(t, s, 40, 4, 5)
		p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{})
		stop := testkit.RunInBackground(t, p)
		testkit.WaitFor(t, p, head)
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		for _, args := range [][]string{{"repartition", "accounts"}, {"repartition", "accounts", "--to", "0"}, {"repartition", "accounts", "--to", "2"}} {
			if _, errOut, code := run(t, cfg, args...); code != 2 {
				t.Errorf("%q: exit %d (%s), want 2", args, code, errOut)
			}
		}
		if _, _, code := run(t, cfg, "repartition", "nope", "--to", "2", "--yes"); code != 1 {
			t.Errorf("repartition of an unknown processor: exit %d, want 1", code)
		}
		out, errOut, code := run(t, cfg, "repartition", "accounts", "--to", "2", "--yes", "--json")
		if code != 0 {
			t.Fatalf("repartition: exit %d: %s", code, errOut)
		}
		var line admin.RepartitionLine
		if err := json.Unmarshal([]byte(out), &line); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if line.From != 1 || line.To != 2 || len(line.Positions) != 2 || line.Positions[0] != head || line.Positions[1] != head {
			t.Errorf("repartition = %+v, want 1 → 2 at %d", line, head)
		}
		if k, err := s.Partitions(t.Context(), "accounts"); err != nil || k != 2 {
			t.Errorf("Partitions() = %d, %v; want 2", k, err)
		}
		out, _, code = run(t, cfg, "status", "--json")
		if code != 0 {
			t.Fatalf("status: exit %d", code)
		}
		got := map[string]admin.ProcessorStatus{}
		for l := range strings.Lines(out) {
			var st admin.ProcessorStatus
			if err := json.Unmarshal([]byte(l), &st); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			got[st.Name] = st
		}
		if st := got["accounts"]; st.State != "partitioned" || st.Position != head || st.Lag != 0 {
			t.Errorf("status of accounts = %+v, want partitioned at %d", st, head)
		}
		for j := range 2 {
			name := processing.PartitionName("accounts", j, 2)
			if st := got[name]; st.Kind != "projector" || st.Position != head || st.State != "stopped" {
				t.Errorf("status of %s = %+v, want a stopped projector at %d", name, st, head)
			}
		}

		// The application's projector, now partitioned, rebuilds all its
		// partitions.
		parted := cfg
		parted.App = func(db *gorm.DB, opts eventstore.Options) (admin.App, error) {
			s, err := eventstore.New(db, testkit.NewRegistry(), opts)
			if err != nil {
				return admin.App{}, err
			}
			p := testkit.AccountsProjector(t, s, "accounts", "accounts", testkit.AccountsOptions{Processing: processing.Options{Partitions: 2}})
			return admin.App{Store: s, Processors: []admin.Processor{p}}, nil
		}
		out, errOut, code = run(t, parted, "rebuild", "accounts", "--yes", "--json")
		if code != 0 || !strings.Contains(out, fmt.Sprintf(`"through":%d`, head)) {
			t.Fatalf("rebuild: exit %d, %s\n%s", code, out, errOut)
		}
		testkit.CheckAccounts(t, testkit.ReadAccounts(t, db, "accounts"), testkit.FoldAccounts(t, s, head))

		// Pause and resume reach the partitions through the processor's
		// own row.
		if _, errOut, code := run(t, parted, "pause", "accounts"); code != 0 {
			t.Errorf("pause: exit %d: %s", code, errOut)
		}
		if paused, err := s.Paused(t.Context(), "accounts"); err != nil || !paused {
			t.Errorf("Paused() = %v, %v; want true", paused, err)
		}
	})
}
