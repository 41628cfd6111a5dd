package todo_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/cairnhq/cairn/aggregate"
	"github.com/cairnhq/cairn/command"
	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/examples/todo/internal/todo"
)

const id = "6f1d7e2a-1111-4c1e-9a6b-123456789abc"

func TestTodoHasAHandlerForEveryEvent(t *testing.T) {
	err := aggregate.Check[todo.Todo](todo.Added{}, todo.Amended{}, todo.Completed{}, todo.Abandoned{}, todo.StakeholderNotifiedOfCompletion{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTodo gives a todo its history, runs a command on it, and checks the
// events it records or the reason it rejects the command.
func TestTodo(t *testing.T) {
	added := todo.Added{Title: "Buy milk"}
	completed := todo.Completed{CompletedOn: "2017-06-13"}
	abandoned := todo.Abandoned{AbandonedOn: "2017-06-13"}
	tests := []struct {
		name    string
		given   []any
		command func(*todo.Todo) error
		want    []any
		wantErr error
	}{
		{
			name: "add records the fields sent",
			command: func(t *todo.Todo) error {
				return t.Add(todo.Add{ID: id, Title: todo.Text("Buy milk"), DueDate: todo.Null()})
			},
			want: []any{todo.Added{Title: "Buy milk", DueDate: todo.Null()}},
		},
		{
			name:    "add of an added todo is rejected",
			given:   []any{added},
			command: func(t *todo.Todo) error { return t.Add(todo.Add{ID: id, Title: todo.Text("Again")}) },
			wantErr: todo.ErrAlreadyExists,
		},
		{
			name:    "amend records only the fields sent",
			given:   []any{added},
			command: func(t *todo.Todo) error { return t.Amend(todo.Amend{ID: id, Description: todo.Text("2 litres")}) },
			want:    []any{todo.Amended{Description: todo.Text("2 litres")}},
		},
		{
			name:    "amend with no fields records an empty amend",
			given:   []any{added},
			command: func(t *todo.Todo) error { return t.Amend(todo.Amend{ID: id}) },
			want:    []any{todo.Amended{}},
		},
		{
			name:    "amend of a completed todo is rejected",
			given:   []any{added, completed},
			command: func(t *todo.Todo) error { return t.Amend(todo.Amend{ID: id}) },
			wantErr: todo.ErrIsComplete,
		},
		{
			name: "complete of a todo never added is rejected",
			command: func(t *todo.Todo) error {
				return t.Complete(todo.Complete{ID: id, CompletedOn: todo.Text("2017-06-13")})
			},
			wantErr: todo.ErrDoesNotExist,
		},
		{
			name:  "complete records the date as sent",
			given: []any{added, todo.Amended{}},
			command: func(t *todo.Todo) error {
				return t.Complete(todo.Complete{ID: id, CompletedOn: todo.Text("2017-06-13T10:00:00Z")})
			},
			want: []any{todo.Completed{CompletedOn: "2017-06-13T10:00:00Z"}},
		},
		{
			name:    "abandon of an abandoned todo is rejected",
			given:   []any{added, abandoned},
			command: func(t *todo.Todo) error { return t.Abandon(todo.Abandon{ID: id, AbandonedOn: todo.Text("2017-06-14")}) },
			wantErr: todo.ErrAlreadyAbandoned,
		},
		{
			name:    "abandon of a completed and notified todo is rejected",
			given:   []any{added, completed, todo.StakeholderNotifiedOfCompletion{}},
			command: func(t *todo.Todo) error { return t.Abandon(todo.Abandon{ID: id, AbandonedOn: todo.Text("2017-06-14")}) },
			wantErr: todo.ErrAlreadyComplete,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg, err := aggregate.New[todo.Todo](id)
			if err != nil {
				t.Fatal(err)
			}
			if err := aggregate.Apply(agg, tt.given...); err != nil {
				t.Fatal(err)
			}
			before := len(agg.Changes())
			err = tt.command(agg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("command error = %v, want %v", err, tt.wantErr)
			}
			if got := agg.Changes()[before:]; !reflect.DeepEqual(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("recorded %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRejectedErrorMessage(t *testing.T) {
	err := error(&todo.RejectedError{ID: id, Reason: todo.ErrAlreadyComplete})
	if got, want := err.Error(), `Todo "`+id+`" already complete`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		command command.Validator
		want    string // "" when valid
	}{
		{todo.Add{ID: id, Title: todo.Text("")}, ""},
		{todo.Add{ID: id}, "title is blank"},
		{todo.Add{ID: id, Title: todo.Null()}, "title is blank"},
		{todo.Add{ID: "42", Title: todo.Null()}, "todo_id is invalid"},
		{todo.Add{ID: "6F1D7E2A-1111-4C1E-9A6B-123456789ABC", Title: todo.Text("x")}, "todo_id is invalid"}, // not canonical
		{todo.Add{ID: id, Title: todo.Text("x"), DueDate: todo.Text("2017-13-45")}, "due_date is invalid"},
		{todo.Add{ID: id, Title: todo.Text("x"), DueDate: todo.Null()}, ""},
		{todo.Amend{ID: id}, ""},
		{todo.Amend{ID: id, StakeholderEmail: todo.Text("a\x00@example.com")}, "stakeholder_email is invalid"},
		{todo.Add{ID: id, Title: todo.Text("x"), Description: todo.Text("\x00")}, "description is invalid"},
		{todo.Amend{ID: id, DueDate: todo.Text("2017-02-29")}, "due_date is invalid"},
		{todo.Amend{ID: id, DueDate: todo.Text("2016-02-29T23:00:00-05:00")}, ""},
		{todo.Complete{ID: id}, "completed_on is blank"},
		{todo.Complete{ID: id, CompletedOn: todo.Text("tomorrow")}, "completed_on is invalid"},
		{todo.Abandon{ID: id, AbandonedOn: todo.Null()}, "abandoned_on is blank"},
		{todo.Abandon{ID: id, AbandonedOn: todo.Text("2017-06-13")}, ""},
	}
	for _, tt := range tests {
		err := tt.command.Validate()
		var got string
		if err != nil {
			fe, ok := errors.AsType[*todo.FieldError](err)
			if !ok {
				t.Errorf("%#v.Validate() = %v, want a *FieldError", tt.command, err)
				continue
			}
			got = fe.Error()
		}
		if got != tt.want {
			t.Errorf("%#v.Validate() = %q, want %q", tt.command, got, tt.want)
		}
	}
}

// TestEventJSON checks that events keep what the client sent: absent fields
// absent, explicit nulls null.
func TestEventJSON(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := todo.RegisterEvents(reg); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		data any
		json string
	}{
		{todo.Added{Title: "x"}, `{"title":"x"}`},
		{todo.Added{Title: "", DueDate: todo.Null(), StakeholderEmail: todo.Text("a@example.com")}, `{"title":"","due_date":null,"stakeholder_email":"a@example.com"}`},
		{todo.Amended{}, `{}`},
		{todo.Amended{Title: todo.Null(), Description: todo.Text("d")}, `{"title":null,"description":"d"}`},
		{todo.Completed{CompletedOn: "2017-06-13"}, `{"completed_on":"2017-06-13"}`},
	}
	for _, tt := range tests {
		enc, err := reg.Encode(tt.data)
		if err != nil {
			t.Fatal(err)
		}
		if string(enc.Data) != tt.json {
			t.Errorf("Encode(%#v) = %s, want %s", tt.data, enc.Data, tt.json)
		}
		back, err := reg.Decode(enc.Type, enc.SchemaVersion, enc.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, tt.data) {
			t.Errorf("Decode(%s) = %#v, want %#v", enc.Data, back, tt.data)
		}
	}
	var f todo.Field
	if err := json.Unmarshal([]byte(`42`), &f); err == nil {
		t.Errorf("Unmarshal(42) into a Field: no error, want one")
	}
}
