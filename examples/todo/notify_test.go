package main

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestNotifierStartsFromHead adds the processors to an app with history:
// the notifier notifies nobody about the todos completed before it was
// registered, and notifies about those completed after. Paused through
// /processors, it notifies nobody until it is resumed.
func TestNotifierStartsFromHead(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		db := testdb.New(t, kind)
		sender := &recordingSender{}
		a, err := newApp(db.Gorm, config{logger: testLogger(t), sender: sender})
		if err != nil {
			t.Fatal(err)
		}
		// The history: the store only, no processor registered yet.
		if err := a.store.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		old := httptest.NewServer(a.handler(nil))
		defer old.Close()
		must(t, "POST", old.URL+"/todo/"+todoID(1), `{"title":"Old","stakeholder_email":"old@example.com"}`, 201)
		must(t, "POST", old.URL+"/todo/"+todoID(1)+"/complete", `{"completed_on":"2017-06-13"}`, 200)

		// Now the processors arrive.
		if err := a.migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		r, err := a.newRunner()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("processors: %v", err)
			}
		}()
		srv := httptest.NewServer(a.handler(r.Handler()))
		defer srv.Close()
		id := func(n int) string { return srv.URL + "/todo/" + todoID(n) }
		caughtUp := func() {
			t.Helper()
			head, err := a.store.Head(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range a.processors() {
				if err := p.WaitFor(t.Context(), head); err != nil {
					t.Fatal(err)
				}
			}
		}
		must(t, "POST", id(2), `{"title":"New","stakeholder_email":"new@example.com"}`, 201)
		must(t, "POST", id(2)+"/complete", `{"completed_on":"2017-06-14"}`, 200)
		caughtUp()
		want := []notify.Notification{{To: "new@example.com", Message: "Your todo item New has been completed!"}}
		if got := sender.notifications(); !slices.Equal(got, want) {
			t.Fatalf("sent %+v, want %+v", got, want)
		}
		// The projections start from the beginning.
		if got := getList(t, srv.URL+"/todos/completed"); len(got) != 2 {
			t.Errorf("completed todos %v, want the old one and the new one", got)
		}

		// Paused, the notifier sends nothing.
		must(t, "POST", id(3), `{"title":"Later","stakeholder_email":"later@example.com"}`, 201)
		must(t, "POST", srv.URL+"/processors/"+notify.Name+"/pause", ``, 200)
		must(t, "POST", id(3)+"/complete", `{"completed_on":"2017-06-15"}`, 200)
		head, err := a.store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []processor{a.outstanding, a.scheduled, a.completed} { // the others move on
			if err := p.WaitFor(t.Context(), head); err != nil {
				t.Fatal(err)
			}
		}
		if got := sender.notifications(); !slices.Equal(got, want) {
			t.Fatalf("sent %+v while paused, want only %+v", got, want)
		}
		must(t, "POST", srv.URL+"/processors/"+notify.Name+"/resume", ``, 200)
		caughtUp()
		want = append(want, notify.Notification{To: "later@example.com", Message: "Your todo item Later has been completed!"})
		if got := sender.notifications(); !slices.Equal(got, want) {
			t.Errorf("sent %+v after the resume, want %+v", got, want)
		}
	})
}
