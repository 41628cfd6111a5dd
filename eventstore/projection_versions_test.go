package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

func projectionStates(t *testing.T, s *eventstore.Store, projector string) []string {
	t.Helper()
	vs, err := s.ProjectionVersions(t.Context(), projector)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.Label+":"+string(v.State))
	}
	return out
}

func countRows(t *testing.T, db *gorm.DB, table string) (int, error) {
	t.Helper()
	var n int
	err := db.Raw(`SELECT count(*) FROM ` + table).Scan(&n).Error
	return n, err
}

// TestProjectionVersions goes through the life of a projection's versions
// on the store: the first active version and its view, a build beside
// it, a swap refused (not building; behind the active version) and one
// done, the fence of the follower, the drop of the retired version, and
// the adoption of plain tables.
func TestProjectionVersions(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		ctx := context.Background()
		db, s := setup(t, kind, eventstore.Options{Logger: testdb.Logger(t)})
		tx := func(fn func(tx *gorm.DB) error) error { return s.Transaction(ctx, fn) }
		mustExec := func(sql string) {
			t.Helper()
			if err := db.Gorm.Exec(sql).Error; err != nil {
				t.Fatal(err)
			}
		}
		if got := projectionStates(t, s, "p"); len(got) != 0 {
			t.Fatalf("versions of a new store = %v, want none", got)
		}

		// The first version, active at once, behind a view.
		mustExec(`CREATE TABLE things_v1 (id text PRIMARY KEY)`)
		mustExec(`INSERT INTO things_v1 (id) VALUES ('one')`)
		v1 := eventstore.ProjectionVersion{Projector: "p", Label: "v1", Version: 1, State: eventstore.ProjectionActive, Tables: []string{"things"}}
		if err := tx(func(tx *gorm.DB) error {
			if _, err := s.LockProjectionVersionsTx(ctx, tx, "p"); err != nil {
				return err
			}
			return s.AddProjectionVersionTx(ctx, tx, v1)
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := countRows(t, db.Gorm, "things"); err != nil || n != 1 {
			t.Fatalf("the view things = %d rows, %v; want the row of things_v1", n, err)
		}
		vs, err := s.ProjectionVersions(ctx, "")
		if err != nil || len(vs) != 1 || vs[0].SwappedAt.IsZero() || vs[0].CreatedAt.IsZero() || !slices.Equal(vs[0].Tables, []string{"things"}) {
			t.Fatalf("ProjectionVersions() = %+v, %v; want v1, active since its creation", vs, err)
		}

		// A build beside it: its builder's position starts at 0.
		mustExec(`CREATE TABLE things_v2 (id text PRIMARY KEY)`)
		v2 := eventstore.ProjectionVersion{Projector: "p", Label: "v2", Version: 2, State: eventstore.ProjectionBuilding, Tables: []string{"things"}, Builder: "p@v2"}
		if err := tx(func(tx *gorm.DB) error { return s.AddProjectionVersionTx(ctx, tx, v2) }); err != nil {
			t.Fatal(err)
		}
		if owner, pos, err := s.LeaseHolder(ctx, "p@v2"); err != nil || owner != "" || pos != 0 {
			t.Fatalf("builder's row = %q, %d, %v; want a row at 0", owner, pos, err)
		}
		dup := v2
		dup.Label = "v2r1"
		if err := tx(func(tx *gorm.DB) error { return s.AddProjectionVersionTx(ctx, tx, dup) }); err == nil {
			t.Errorf("a second build was recorded; want one at most")
		}
		bad := v2
		bad.State, bad.Label = eventstore.ProjectionRetired, "v9"
		if err := tx(func(tx *gorm.DB) error { return s.AddProjectionVersionTx(ctx, tx, bad) }); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("AddProjectionVersionTx(retired) = %v, want ErrInvalidArgument", err)
		}
		bad = v2
		bad.Label, bad.Tables = "v8", []string{"things; DROP TABLE x"}
		if err := tx(func(tx *gorm.DB) error { return s.AddProjectionVersionTx(ctx, tx, bad) }); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("AddProjectionVersionTx(bad table name) = %v, want ErrInvalidArgument", err)
		}

		// The follower of the active version, at 5 of 7 events.
		for range 7 {
			testkit.MustAppend(t, s, "acct-1", event.Any, []any{testkit.Deposited{Amount: 1}})
		}
		if _, _, err := s.LoadPosition(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		epoch, _, ok, err := s.AcquireLease(ctx, "p", "follower", time.Minute)
		if err != nil || !ok {
			t.Fatalf("AcquireLease() = %v, %v", ok, err)
		}
		if saved, err := s.SavePosition(ctx, "p", epoch, 0, 5); err != nil || !saved {
			t.Fatalf("SavePosition() = %v, %v", saved, err)
		}

		// Refused swaps leave everything as it was.
		never := func(int64, func(int64, int, ...string) (event.Batch, error)) (int64, error) {
			t.Error("catchUp called for a version not being built")
			return 0, nil
		}
		if err := tx(func(tx *gorm.DB) error { return s.SwapProjectionVersionTx(ctx, tx, "p", "v7", never) }); !errors.Is(err, eventstore.ErrProjectionState) {
			t.Errorf("swap of a version not being built = %v, want ErrProjectionState", err)
		}
		behind := func(active int64, _ func(int64, int, ...string) (event.Batch, error)) (int64, error) {
			return active - 1, nil
		}
		if err := tx(func(tx *gorm.DB) error { return s.SwapProjectionVersionTx(ctx, tx, "p", "v2", behind) }); !errors.Is(err, eventstore.ErrProjectionState) {
			t.Errorf("swap of a version behind the active one = %v, want ErrProjectionState", err)
		}
		if renewed, err := s.RenewLease(ctx, "p", "follower", epoch, time.Minute); err != nil || !renewed {
			t.Fatalf("after the refused swaps, RenewLease() = %v, %v; want the follower's lease intact", renewed, err)
		}
		if got := projectionStates(t, s, "p"); !slices.Equal(got, []string{"v1:active", "v2:building"}) {
			t.Fatalf("versions after refused swaps = %v", got)
		}

		// The swap: the catch-up reads the events up to the follower's
		// position, in the transaction.
		mustExec(`INSERT INTO things_v2 (id) VALUES ('one'), ('two')`)
		var read []int64
		catchUp := func(active int64, readBatch func(int64, int, ...string) (event.Batch, error)) (int64, error) {
			if active != 5 {
				t.Errorf("catchUp(%d), want the follower's position 5", active)
			}
			for through := int64(0); through < active; {
				b, err := readBatch(through, 2, testkit.TypeDeposited)
				if err != nil {
					return 0, err
				}
				for _, e := range b.Events {
					read = append(read, e.Position)
				}
				through = b.Through
			}
			return 6, nil
		}
		if err := tx(func(tx *gorm.DB) error { return s.SwapProjectionVersionTx(ctx, tx, "p", "v2", catchUp) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(read, []int64{1, 2, 3, 4, 5}) {
			t.Errorf("catch-up read %v, want the events up to 5", read)
		}
		if got := projectionStates(t, s, "p"); !slices.Equal(got, []string{"v1:retired", "v2:active"}) {
			t.Errorf("versions after the swap = %v, want v1 retired and v2 active", got)
		}
		if n, err := countRows(t, db.Gorm, "things"); err != nil || n != 2 {
			t.Errorf("the view things = %d rows, %v; want the 2 of things_v2", n, err)
		}
		if renewed, err := s.RenewLease(ctx, "p", "follower", epoch, time.Minute); err != nil || renewed {
			t.Errorf("the follower renewed its lease after the swap (%v, %v); want it fenced", renewed, err)
		}
		if owner, pos, err := s.LeaseHolder(ctx, "p"); err != nil || owner != "" || pos != 6 {
			t.Errorf("the follower's row = %q at %d, %v; want no owner, at the build's 6", owner, pos, err)
		}
		all, err := s.ListPositions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			if p.Name == "p@v2" {
				t.Errorf("the builder's row is left after the swap: %+v", p)
			}
		}

		// The retired version is dropped when its time has come.
		if dropped, err := s.DropRetiredProjectionVersions(ctx, "p", time.Hour); err != nil || len(dropped) != 0 {
			t.Errorf("DropRetiredProjectionVersions(an hour) = %v, %v; want nothing yet", dropped, err)
		}
		if dropped, err := s.DropRetiredProjectionVersions(ctx, "p", 0); err != nil || len(dropped) != 1 || dropped[0].Label != "v1" {
			t.Errorf("DropRetiredProjectionVersions(0) = %v, %v; want v1", dropped, err)
		}
		if _, err := countRows(t, db.Gorm, "things_v1"); err == nil {
			t.Errorf("things_v1 is still there")
		}
		if got := projectionStates(t, s, "p"); !slices.Equal(got, []string{"v2:active"}) {
			t.Errorf("versions after the drop = %v, want v2 active", got)
		}

		// Plain tables are adopted; views and missing names are not.
		mustExec(`CREATE TABLE legacy (id text)`)
		var adopted []string
		if err := tx(func(tx *gorm.DB) error {
			var err error
			adopted, err = s.AdoptProjectionTablesTx(ctx, tx, []string{"legacy", "missing", "things"}, "v0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(adopted, []string{"legacy"}) {
			t.Errorf("AdoptProjectionTablesTx() = %v, want [legacy]", adopted)
		}
		if _, err := countRows(t, db.Gorm, "legacy_v0"); err != nil {
			t.Errorf("legacy_v0: %v", err)
		}
	})
}
