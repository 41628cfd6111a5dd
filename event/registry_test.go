package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/event"
)

type added struct {
	Title string `json:"title"`
}

type renamed struct {
	Name string `json:"name"`
}

func TestRegisterRejectsConflicts(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := event.Register[added](reg, "todo.added"); err != nil {
		t.Fatalf("Register(todo.added) = %v, want nil", err)
	}
	tests := []struct {
		name string
		reg  func() error
		want string
	}{
		{"same name again", func() error { return event.Register[renamed](reg, "todo.added") }, "name already registered"},
		{"same type again", func() error { return event.Register[added](reg, "todo.other") }, "already registered as"},
		{"empty name", func() error { return event.Register[renamed](reg, "") }, "empty type name"},
		{"interface type", func() error { return event.Register[error](reg, "err") }, "interface type"},
		{"version zero", func() error { return event.RegisterVersion[renamed](reg, "renamed", 0) }, "schema version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.reg()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("register = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[added](reg, "todo.added")
	for _, in := range []any{added{Title: "a\x00b"}, &added{Title: "pointer"}} {
		enc, err := reg.Encode(in)
		if err != nil {
			t.Fatalf("Encode(%#v) = %v", in, err)
		}
		if enc.Type != "todo.added" || enc.SchemaVersion != 1 {
			t.Fatalf("Encode(%#v) = type %q schema %d, want todo.added 1", in, enc.Type, enc.SchemaVersion)
		}
		got, err := reg.Decode(enc.Type, enc.SchemaVersion, enc.Data)
		if err != nil {
			t.Fatalf("Decode = %v", err)
		}
		want := in
		if p, ok := in.(*added); ok {
			want = *p
		}
		if got != want {
			t.Fatalf("Decode = %#v, want %#v (a value, not a pointer)", got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[added](reg, "todo.added")
	if _, err := reg.Encode(nil); err == nil {
		t.Error("Encode(nil) = nil error, want one")
	}
	if _, err := reg.Encode((*added)(nil)); err == nil {
		t.Error("Encode((*added)(nil)) = nil error, want one")
	}
	if _, err := reg.Encode(renamed{}); !errors.Is(err, event.ErrUnknownType) {
		t.Errorf("Encode(unregistered) = %v, want ErrUnknownType", err)
	}
}

func TestDecodeErrorsNameTheType(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[added](reg, "todo.added")
	tests := []struct {
		name    string
		typ     string
		schema  int
		data    string
		unknown bool
	}{
		{"unknown type", "todo.gone", 1, `{}`, true},
		{"data does not fit", "todo.added", 1, `{"title": 42}`, false},
		{"not JSON", "todo.added", 1, `{`, false},
		{"newer schema than registered", "todo.added", 2, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Decode(tt.typ, tt.schema, []byte(tt.data))
			var de *event.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %v, want a *DecodeError", err)
			}
			if de.Type != tt.typ || !strings.Contains(err.Error(), tt.typ) {
				t.Errorf("DecodeError = %v, want it to name %q", err, tt.typ)
			}
			if got := errors.Is(err, event.ErrUnknownType); got != tt.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownType) = %v, want %v", err, got, tt.unknown)
			}
		})
	}
}

// titleV3 is the third shape of an event whose first shape was
// {"title": "..."} and second {"name": "..."}.
type titleV3 struct {
	Name  string `json:"name"`
	Upper bool   `json:"upper"`
}

func TestUpcastersRunInOrder(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := event.RegisterVersion[titleV3](reg, "todo.titled", 3); err != nil {
		t.Fatal(err)
	}
	if err := reg.AddUpcaster("todo.titled", 1, func(b []byte) ([]byte, error) {
		var v1 struct{ Title string }
		if err := json.Unmarshal(b, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"name": v1.Title})
	}); err != nil {
		t.Fatal(err)
	}
	if err := reg.AddUpcaster("todo.titled", 2, func(b []byte) ([]byte, error) {
		return bytes.Replace(b, []byte("}"), []byte(`,"upper":true}`), 1), nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Decode("todo.titled", 1, []byte(`{"title":"old"}`))
	if err != nil {
		t.Fatalf("Decode(v1) = %v", err)
	}
	if want := (titleV3{Name: "old", Upper: true}); got != want {
		t.Fatalf("Decode(v1) = %#v, want %#v", got, want)
	}
	got, err = reg.Decode("todo.titled", 3, []byte(`{"name":"new"}`))
	if err != nil || got != (titleV3{Name: "new"}) {
		t.Fatalf("Decode(v3) = %#v, %v; want the data untouched", got, err)
	}

	for _, tt := range []struct {
		name string
		from int
	}{{"from the current version", 3}, {"from version 0", 0}, {"twice from one version", 1}} {
		if err := reg.AddUpcaster("todo.titled", tt.from, func(b []byte) ([]byte, error) { return b, nil }); err == nil {
			t.Errorf("AddUpcaster %s = nil, want an error", tt.name)
		}
	}
	if err := reg.AddUpcaster("todo.unknown", 1, func(b []byte) ([]byte, error) { return b, nil }); !errors.Is(err, event.ErrUnknownType) {
		t.Errorf("AddUpcaster(unknown type) = %v, want ErrUnknownType", err)
	}
}

func TestMissingUpcasterIsADecodeError(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	if err := event.RegisterVersion[titleV3](reg, "todo.titled", 2); err != nil {
		t.Fatal(err)
	}
	_, err := reg.Decode("todo.titled", 1, []byte(`{}`))
	var de *event.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "no upcaster from schema version 1") {
		t.Fatalf("Decode(v1 without upcaster) = %v, want a DecodeError about the missing upcaster", err)
	}
}

// upperCodec is a codec that is not JSON, to show the codec is replaceable.
type upperCodec struct{}

func (upperCodec) Marshal(v any) ([]byte, error) {
	return []byte(strings.ToUpper(v.(added).Title)), nil
}

func (upperCodec) Unmarshal(data []byte, v any) error {
	v.(*added).Title = string(data)
	return nil
}

func TestReplaceableCodec(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{Codec: upperCodec{}})
	event.MustRegister[added](reg, "todo.added")
	enc, err := reg.Encode(added{Title: "milk"})
	if err != nil || string(enc.Data) != "MILK" {
		t.Fatalf("Encode = %q, %v; want MILK", enc.Data, err)
	}
	got, err := reg.Decode(enc.Type, enc.SchemaVersion, enc.Data)
	if err != nil || got != (added{Title: "MILK"}) {
		t.Fatalf("Decode = %#v, %v", got, err)
	}
}

func TestRegistryIsSafeForConcurrentUse(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[added](reg, "todo.added")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 200 {
				enc, err := reg.Encode(added{Title: "x"})
				if err == nil {
					_, err = reg.Decode(enc.Type, enc.SchemaVersion, enc.Data)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			_ = reg.AddUpcaster("todo.added", i, nil) // always refused: nil
			reg.Known("todo.added")
			reg.Names()
		}()
	}
	wg.Wait()
}
