package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/processing"
)

// request is one of the four commands, sent to a todo.
type request struct {
	method, path, body string
	success            int
}

var commands = map[string]request{
	"add":      {"POST", "", `{"title":"Buy milk"}`, 201},
	"amend":    {"PUT", "", `{"title":"Buy oat milk"}`, 200},
	"complete": {"POST", "/complete", `{"completed_on":"2017-06-13"}`, 200},
	"abandon":  {"POST", "/abandon", `{"abandoned_on":"2017-06-13"}`, 200},
}

// TestCommands runs every command against a todo in every state, as in the
// spec's table.
func TestCommands(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		// The commands that bring a todo into each state.
		states := map[string][]string{
			"never added": nil,
			"outstanding": {"add"},
			"completed":   {"add", "complete"},
			"abandoned":   {"add", "abandon"},
		}
		tests := []struct {
			command, state string
			rejection      string // after `Todo "<id>" `; empty when the command succeeds
		}{
			{"add", "never added", ""},
			{"add", "outstanding", "already exists"},
			{"add", "completed", "already exists"},
			{"add", "abandoned", "already exists"},
			{"amend", "never added", "does not exist"},
			{"amend", "outstanding", ""},
			{"amend", "completed", "is complete"},
			{"amend", "abandoned", "is abandoned"},
			{"complete", "never added", "does not exist"},
			{"complete", "outstanding", ""},
			{"complete", "completed", "already complete"},
			{"complete", "abandoned", "already abandoned"},
			{"abandon", "never added", "does not exist"},
			{"abandon", "outstanding", ""},
			{"abandon", "completed", "already complete"},
			{"abandon", "abandoned", "already abandoned"},
		}
		for i, tt := range tests {
			name := tt.command + " when " + tt.state + " succeeds"
			if tt.rejection != "" {
				name = tt.command + " when " + tt.state + " is rejected"
			}
			t.Run(name, func(t *testing.T) {
				id := todoID(i + 1)
				for _, c := range states[tt.state] {
					r := commands[c]
					must(t, r.method, a.url+"/todo/"+id+r.path, r.body, r.success)
				}
				r := commands[tt.command]
				got := send(t, r.method, a.url+"/todo/"+id+r.path, r.body)
				want := response{status: r.success, contentType: "application/json"}
				if tt.rejection != "" {
					want.status = http.StatusUnprocessableEntity
					want.body = fmt.Sprintf("Unprocessable Entity: Todo %q %s", id, tt.rejection)
				}
				if got != want {
					t.Errorf("%s /todo/%s%s = %v (%s), want %v (%s)", r.method, id, r.path, got, got.contentType, want, want.contentType)
				}
			})
		}
	})
}

// TestBadRequests sends every kind of bad request: each answers 400 with
// the spec's message, before the todo's state is looked at.
func TestBadRequests(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		id := todoID(1)
		must(t, "POST", a.url+"/todo/"+todoID(2), `{"title":"Outstanding"}`, 201)
		tests := []struct {
			name, method, path, body, message string
		}{
			{"add without a title", "POST", "/todo/" + id, `{"description":"x"}`, "title is blank"},
			{"add with a null title", "POST", "/todo/" + id, `{"title":null}`, "title is blank"},
			{"add with a bad due date", "POST", "/todo/" + id, `{"title":"x","due_date":"2017-13-45"}`, "due_date is invalid"},
			{"add with a due date in another format", "POST", "/todo/" + id, `{"title":"x","due_date":"13/06/2017"}`, "due_date is invalid"},
			{"add with a NUL character in the title", "POST", "/todo/" + id, `{"title":"a\u0000b"}`, "title is invalid"},
			{"amend with a NUL character in the email", "PUT", "/todo/" + todoID(2), `{"stakeholder_email":"\u0000"}`, "stakeholder_email is invalid"},
			{"add with a number for a title", "POST", "/todo/" + id, `{"title":42}`, "title is invalid"},
			{"amend with a bad due date", "PUT", "/todo/" + todoID(2), `{"due_date":"2017-13-45"}`, "due_date is invalid"},
			{"amend of an unknown todo with a bad due date", "PUT", "/todo/" + id, `{"due_date":"2017-13-45"}`, "due_date is invalid"},
			{"complete without a date", "POST", "/todo/" + id + "/complete", `{}`, "completed_on is blank"},
			{"complete with a null date", "POST", "/todo/" + id + "/complete", `{"completed_on":null}`, "completed_on is blank"},
			{"complete with a bad date", "POST", "/todo/" + id + "/complete", `{"completed_on":"2017-13-45"}`, "completed_on is invalid"},
			{"complete with an empty date", "POST", "/todo/" + id + "/complete", `{"completed_on":""}`, "completed_on is invalid"},
			{"abandon without a date", "POST", "/todo/" + id + "/abandon", `{}`, "abandoned_on is blank"},
			{"abandon with a null date", "POST", "/todo/" + id + "/abandon", `{"abandoned_on":null}`, "abandoned_on is blank"},
			{"abandon with a bad date", "POST", "/todo/" + id + "/abandon", `{"abandoned_on":"2017-13-45"}`, "abandoned_on is invalid"},
			{"add to a non-UUID ID", "POST", "/todo/42", `{"title":"x"}`, "todo_id is invalid"},
			{"amend of a non-UUID ID", "PUT", "/todo/not-a-uuid", `{"title":"x"}`, "todo_id is invalid"},
			{"complete of a non-UUID ID", "POST", "/todo/" + id + "x/complete", `{"completed_on":"2017-06-13"}`, "todo_id is invalid"},
			{"abandon of a non-UUID ID", "POST", "/todo/{" + id + "}/abandon", `{"abandoned_on":"2017-06-13"}`, "todo_id is invalid"},
			{"a non-UUID ID and a bad body", "POST", "/todo/42", `[]`, "todo_id is invalid"},
			{"malformed JSON", "POST", "/todo/" + id, `{"title":`, "body must be a JSON object"},
			{"a JSON array", "POST", "/todo/" + id, `[{"title":"x"}]`, "body must be a JSON object"},
			{"an empty JSON array", "PUT", "/todo/" + todoID(2), `[]`, "body must be a JSON object"},
			{"a JSON string", "POST", "/todo/" + id + "/complete", `"2017-06-13"`, "body must be a JSON object"},
			{"JSON null", "POST", "/todo/" + id + "/abandon", `null`, "body must be a JSON object"},
			{"no body", "POST", "/todo/" + id, ``, "body must be a JSON object"},
			{"two JSON objects", "POST", "/todo/" + id, `{"title":"x"} {"title":"y"}`, "body must be a JSON object"},
		}
		for _, tt := range tests {
			t.Run(tt.name+" is a bad request", func(t *testing.T) {
				got := send(t, tt.method, a.url+tt.path, tt.body)
				want := response{status: 400, body: "Bad Request: " + tt.message, contentType: "application/json"}
				if got != want {
					t.Errorf("%s %s %s = %v (%s), want %v (%s)", tt.method, tt.path, tt.body, got, got.contentType, want, want.contentType)
				}
			})
		}
		// Nothing was added by the bad requests.
		must(t, "POST", a.url+"/todo/"+id+"/complete", `{"completed_on":"2017-06-13"}`, 422)

		accepted := []struct{ name, method, path, body string }{
			{"an empty title", "POST", "/todo/" + todoID(3), `{"title":""}`},
			{"unknown keys", "POST", "/todo/" + todoID(4), `{"title":"x","priority":1,"todo_id":"whatever"}`},
			{"a null due date", "POST", "/todo/" + todoID(5), `{"title":"x","due_date":null,"description":null}`},
			{"an RFC 3339 due date", "POST", "/todo/" + todoID(6), `{"title":"x","due_date":"2017-06-13T10:00:00+02:00"}`},
			{"an upper-case ID", "POST", "/todo/" + "ABCDEF00-0000-4000-8000-000000000007", `{"title":"x"}`},
		}
		for _, tt := range accepted {
			t.Run(tt.name+" is accepted", func(t *testing.T) {
				must(t, tt.method, a.url+tt.path, tt.body, 201)
			})
		}
	})
}

func TestRoutes(t *testing.T) {
	a := startApp(t, testdb.SQLite)
	tests := []struct {
		method, path string
		status       int
		contentType  string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/nope", 404, "application/json"},
		{"GET", "/todos", 404, "application/json"},
		{"GET", "/todo/" + todoID(1), 405, "application/json"},
		{"DELETE", "/todos/outstanding", 405, "application/json"},
		{"GET", "/processors", 200, "application/json"},
	}
	for _, tt := range tests {
		got := send(t, tt.method, a.url+tt.path, "")
		if got.status != tt.status || got.contentType != tt.contentType {
			t.Errorf("%s %s = %d (%s), want %d (%s)", tt.method, tt.path, got.status, got.contentType, tt.status, tt.contentType)
		}
	}
}

// TestQueries runs a sequence of commands and waits for the three lists to
// show it, in their orders, with dates rendered in UTC.
func TestQueries(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		id := func(n int) string { return a.url + "/todo/" + todoID(n) }

		for _, l := range []string{"outstanding", "scheduled", "completed"} {
			if got := send(t, "GET", a.url+"/todos/"+l, ""); got.body != "[]\n" {
				t.Errorf("GET /todos/%s on an empty store = %q, want []", l, got.body)
			}
		}

		must(t, "POST", id(1), `{"title":"I don't do requests"}`, 201)
		must(t, "POST", id(2), `{"title":"If it's hard to remember, it will be difficult to forget","due_date":"2017-06-13"}`, 201)
		must(t, "POST", id(3), `{"title":"Milk is for babies","stakeholder_email":"bob@example.com"}`, 201)
		must(t, "POST", id(1)+"/complete", `{"completed_on":"2017-06-13"}`, 200)
		must(t, "PUT", id(2), `{"title":"If it's hard to remember, it...","description":"Hmm..."}`, 200)
		must(t, "POST", id(4), `{"title":"Fly","due_date":"2017-06-14T09:30:15.75+10:00","description":"to the moon"}`, 201)
		must(t, "PUT", id(3), `{"due_date":"2017-07-01"}`, 200) // joins the scheduled list
		must(t, "PUT", id(4), `{"due_date":null}`, 200)         // leaves it
		must(t, "POST", id(5), `{"title":"Give up"}`, 201)      //
		must(t, "POST", id(5)+"/abandon", `{"abandoned_on":"2017-06-15"}`, 200)
		must(t, "POST", id(6), `{"title":"Later","due_date":"2018-01-01"}`, 201)
		must(t, "PUT", id(4), `{"description":null,"stakeholder_email":"amy@example.com"}`, 200)
		must(t, "POST", id(3)+"/complete", `{"completed_on":"2017-06-20T23:59:59-01:00"}`, 200)
		must(t, "POST", id(2)+"/complete", `{"completed_on":"2017-06-16"}`, 200)
		must(t, "PUT", id(6), `{"title":null}`, 200)

		waitForList(t, a.url+"/todos/outstanding", list{
			row("todo_id", todoID(4), "title", "Fly", "description", nil, "due_date", nil, "stakeholder_email", "amy@example.com"),
			row("todo_id", todoID(6), "title", nil, "description", nil, "due_date", "2018-01-01 00:00:00 UTC", "stakeholder_email", nil),
		})
		waitForList(t, a.url+"/todos/scheduled", list{
			row("todo_id", todoID(6), "title", nil, "description", nil, "due_date", "2018-01-01 00:00:00 UTC", "stakeholder_email", nil),
		})
		waitForList(t, a.url+"/todos/completed", list{
			row("todo_id", todoID(1), "title", "I don't do requests", "description", nil, "due_date", nil,
				"stakeholder_email", nil, "completed_on", "2017-06-13 00:00:00 UTC"),
			row("todo_id", todoID(3), "title", "Milk is for babies", "description", nil, "due_date", "2017-07-01 00:00:00 UTC",
				"stakeholder_email", "bob@example.com", "completed_on", "2017-06-21 00:59:59 UTC"),
			row("todo_id", todoID(2), "title", "If it's hard to remember, it...", "description", "Hmm...", "due_date", "2017-06-13 00:00:00 UTC",
				"stakeholder_email", nil, "completed_on", "2017-06-16 00:00:00 UTC"),
		})
		// And before the last amend: todo 4's due date, rendered, is in the
		// event as sent.
		var added todo.Added
		for e, err := range a.store.ReadStream(t.Context(), todo.StreamID(todoID(4)), 1, 1) {
			if err != nil {
				t.Fatal(err)
			}
			added = e.Data.(todo.Added)
		}
		if s, _ := added.DueDate.Get(); s != "2017-06-14T09:30:15.75+10:00" {
			t.Errorf("todo_added due_date = %q, want it as sent", s)
		}
	})
}

// TestAmendWithoutProjectedFields amends todos with none of the fields the
// projections keep: a no-op for them, after which the processors go on.
func TestAmendWithoutProjectedFields(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		id := func(n int) string { return a.url + "/todo/" + todoID(n) }
		must(t, "POST", id(1), `{"title":"One","due_date":"2017-06-13","stakeholder_email":"a@example.com"}`, 201)
		must(t, "PUT", id(1), `{}`, 200)
		must(t, "PUT", id(1), `{"colour":"blue"}`, 200)
		must(t, "POST", id(2), `{"title":"Two"}`, 201)
		must(t, "PUT", id(2), `{"description":"only the description"}`, 200) // nothing the notifier keeps
		must(t, "PUT", id(1), `{"title":"One, amended"}`, 200)
		must(t, "POST", id(2)+"/complete", `{"completed_on":"2017-06-14"}`, 200)

		waitForList(t, a.url+"/todos/outstanding", list{
			row("todo_id", todoID(1), "title", "One, amended", "description", nil, "due_date", "2017-06-13 00:00:00 UTC", "stakeholder_email", "a@example.com"),
		})
		waitForList(t, a.url+"/todos/scheduled", list{
			row("todo_id", todoID(1), "title", "One, amended", "description", nil, "due_date", "2017-06-13 00:00:00 UTC", "stakeholder_email", "a@example.com"),
		})
		waitForList(t, a.url+"/todos/completed", list{
			row("todo_id", todoID(2), "title", "Two", "description", "only the description", "due_date", nil, "stakeholder_email", nil, "completed_on", "2017-06-14 00:00:00 UTC"),
		})
		head, err := a.store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range a.processors() {
			if err := p.WaitFor(t.Context(), head); err != nil {
				t.Fatalf("%s: WaitFor(%d): %v", p.Name(), head, err)
			}
			if s := p.Status(); s.State != processing.Running || s.Attempts != 0 || s.LastError != nil {
				t.Errorf("%s: status %+v, want running without errors", p.Name(), s)
			}
		}
	})
}

// TestNotifier completes todos with and without a stakeholder: only the
// first is notified, once, with one event recording it.
func TestNotifier(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		id := func(n int) string { return a.url + "/todo/" + todoID(n) }
		must(t, "POST", id(1), `{"title":"Milk","stakeholder_email":"old@example.com"}`, 201)
		must(t, "PUT", id(1), `{"title":"Oat milk","stakeholder_email":"bob@example.com"}`, 200)
		must(t, "POST", id(2), `{"title":"No stakeholder"}`, 201)
		must(t, "POST", id(3), `{"title":"Stakeholder removed","stakeholder_email":"amy@example.com"}`, 201)
		must(t, "PUT", id(3), `{"stakeholder_email":null}`, 200)
		must(t, "POST", id(4), `{"title":"Abandoned","stakeholder_email":"eve@example.com"}`, 201)
		must(t, "POST", id(4)+"/abandon", `{"abandoned_on":"2017-06-13"}`, 200)
		for n := 1; n <= 3; n++ {
			must(t, "POST", id(n)+"/complete", `{"completed_on":"2017-06-13"}`, 200)
		}
		head, err := a.store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.notifier.WaitFor(t.Context(), head); err != nil {
			t.Fatalf("notifier: WaitFor(%d): %v", head, err)
		}

		want := []notify.Notification{{To: "bob@example.com", Message: "Your todo item Oat milk has been completed!"}}
		if got := a.sender.notifications(); !slices.Equal(got, want) {
			t.Errorf("sent %+v, want %+v", got, want)
		}
		for n := 1; n <= 4; n++ {
			var completed event.Event
			var notified []event.Event
			for e, err := range a.store.ReadStream(t.Context(), todo.StreamID(todoID(n)), 0, 0) {
				if err != nil {
					t.Fatal(err)
				}
				switch e.Type {
				case todo.CompletedType:
					completed = e
				case todo.StakeholderNotifiedOfCompletionType:
					notified = append(notified, e)
				}
			}
			if n != 1 {
				if len(notified) != 0 {
					t.Errorf("todo %d: %d notification events, want none", n, len(notified))
				}
				continue
			}
			if len(notified) != 1 {
				t.Fatalf("todo %d: %d notification events, want 1", n, len(notified))
			}
			e := notified[0]
			if e.CausationID != completed.ID.String() || e.CorrelationID != completed.CorrelationID {
				t.Errorf("notification event caused by %q in %q, want by the completion %q in %q", e.CausationID, e.CorrelationID, completed.ID, completed.CorrelationID)
			}
			if on := e.Data.(todo.StakeholderNotifiedOfCompletion).NotifiedOn; on.IsZero() || on.Location() != time.UTC {
				t.Errorf("notified_on = %v, want a UTC time", on)
			}
		}
	})
}

// TestConcurrentClients sends 50 adds of distinct todos and 20 completes of
// one todo at once: every add succeeds, one complete does, and the others
// are rejected (422) or gave up on conflicts (409) — never a 500.
func TestConcurrentClients(t *testing.T) {
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		target := todoID(1000)
		must(t, "POST", a.url+"/todo/"+target, `{"title":"Contended"}`, 201)

		const adders, completers = 50, 20
		start := make(chan struct{})
		var wg sync.WaitGroup
		adds := make([]response, adders)
		completes := make([]response, completers)
		for i := range adders {
			wg.Go(func() {
				<-start
				adds[i] = send(t, "POST", a.url+"/todo/"+todoID(i+1), fmt.Sprintf(`{"title":"Todo %d"}`, i+1))
			})
		}
		for i := range completers {
			wg.Go(func() {
				<-start
				completes[i] = send(t, "POST", a.url+"/todo/"+target+"/complete", `{"completed_on":"2017-06-13"}`)
			})
		}
		close(start)
		wg.Wait()

		for i, r := range adds {
			if r.status != 201 {
				t.Errorf("add %d = %v, want 201", i+1, r)
			}
		}
		succeeded := 0
		for i, r := range completes {
			switch r.status {
			case 200:
				succeeded++
			case 422:
				if want := fmt.Sprintf("Unprocessable Entity: Todo %q already complete", target); r.body != want {
					t.Errorf("complete %d = %v, want %q", i, r, want)
				}
			case 409:
				t.Logf("complete %d = %v", i, r)
			default:
				t.Errorf("complete %d = %v, want 200, 422 or 409", i, r)
			}
		}
		if succeeded != 1 {
			t.Errorf("%d completes succeeded, want 1", succeeded)
		}

		var want list
		for i := range adders {
			want = append(want, row("todo_id", todoID(i+1), "title", fmt.Sprintf("Todo %d", i+1), "description", nil, "due_date", nil, "stakeholder_email", nil))
		}
		// The adds raced, so the list's order is theirs: compare as sets.
		waitForSet(t, a.url+"/todos/outstanding", want)
		waitForList(t, a.url+"/todos/completed", list{
			row("todo_id", target, "title", "Contended", "description", nil, "due_date", nil, "stakeholder_email", nil, "completed_on", "2017-06-13 00:00:00 UTC"),
		})
	})
}
