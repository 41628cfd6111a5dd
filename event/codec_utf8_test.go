package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/event"
)

type utf8Inner struct {
	Name string `json:"name"`
}

type utf8Embedded struct {
	Label string
}

type utf8Event struct {
	Text    string            `json:"text"`
	Items   []utf8Inner       `json:"items,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Ptr     *string           `json:"ptr,omitempty"`
	Any     any               `json:"any,omitempty"`
	Raw     []byte            `json:"raw,omitempty"`
	Skipped string            `json:"-"`
	hidden  string
	utf8Embedded
}

// utf8Text marshals itself as text; JSON carries that text as a string.
type utf8Text struct{ s string }

func (t utf8Text) MarshalText() ([]byte, error) { return []byte(t.s), nil }

// utf8RawJSON marshals itself; the codec leaves it alone.
type utf8RawJSON struct{}

func (utf8RawJSON) MarshalJSON() ([]byte, error) { return []byte(`"\ufffd"`), nil }

// JSONCodec refuses strings that are not valid UTF-8, naming where they
// are, instead of letting encoding/json replace their bytes; everything
// else is encoded as by encoding/json, including real U+FFFD characters
// and literal "\ufffd" texts.
func TestJSONCodecInvalidUTF8(t *testing.T) {
	bad := "a\xffb"
	tests := []struct {
		name  string
		value any
		where string // "" when the value encodes
	}{
		{"valid", utf8Event{Text: "ström ☃"}, ""},
		{"real replacement character", utf8Event{Text: "a\uFFFDb"}, ""},
		{"literal escape text", utf8Event{Text: `a\ufffdb`}, ""},
		{"replacement character beside an ignored invalid field", utf8Event{Text: "\uFFFD", Skipped: bad, hidden: bad}, ""},
		{"bytes", utf8Event{Text: "\uFFFD", Raw: []byte(bad)}, ""},
		{"self-marshalling value", utf8RawJSON{}, ""},
		{"field", utf8Event{Text: bad}, ".text"},
		{"pointer field", utf8Event{Ptr: &bad}, ".ptr"},
		{"slice element", utf8Event{Items: []utf8Inner{{"ok"}, {bad}}}, ".items[1].name"},
		{"map value", utf8Event{Tags: map[string]string{"k": bad}}, `.tags["k"]`},
		{"map key", utf8Event{Tags: map[string]string{bad: "v"}}, `.tags key "a\xffb"`},
		{"interface", utf8Event{Any: []any{1, bad}}, ".any[1]"},
		{"embedded struct field", utf8Event{utf8Embedded: utf8Embedded{Label: bad}}, ".Label"},
		{"text marshaler", map[string]utf8Text{"k": {bad}}, `["k"]`},
		{"pointer to a string", &bad, "the string"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			got, err := event.JSONCodec{}.Marshal(tt.value)
			if tt.where == "" {
				want, _ := json.Marshal(tt.value)
				if err != nil || string(got) != string(want) {
					t.Errorf("Marshal(%#v) = %s, %v; want %s, nil", tt.value, got, err, want)
				}
				return
			}
			if err == nil || got != nil {
				t.Fatalf("Marshal(%#v) = %s, %v; want an error", tt.value, got, err)
			}
			if !strings.Contains(err.Error(), tt.where) {
				t.Errorf("Marshal(%#v) = %v, want an error naming %s", tt.value, err, tt.where)
			}
		})
	}
}

// Registry.Encode names the type of the refused data.
func TestEncodeInvalidUTF8(t *testing.T) {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[utf8Event](reg, "test.utf8")
	_, err := reg.Encode(utf8Event{Text: "a\xffb"})
	if err == nil || !strings.Contains(err.Error(), `"test.utf8"`) || !strings.Contains(err.Error(), ".text") {
		t.Errorf(`Encode(invalid UTF-8) = %v, want an error naming "test.utf8" and .text`, err)
	}
	var de *event.DecodeError
	if errors.As(err, &de) {
		t.Errorf("Encode(invalid UTF-8) = %v, a *DecodeError", err)
	}
}

var sinkBytes []byte

// The encode path of ordinary event data (about 100 bytes of JSON, all
// valid UTF-8): the check costs two byte searches of the output.
func BenchmarkJSONCodecMarshal(b *testing.B) {
	v := utf8Event{Text: "Buy milk, eggs and bread on the way home", Items: []utf8Inner{{"groceries"}, {"errands"}},
		Tags: map[string]string{"list": "home"}}
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			sinkBytes, _ = json.Marshal(v)
		}
	})
	b.Run("JSONCodec", func(b *testing.B) {
		for b.Loop() {
			sinkBytes, _ = event.JSONCodec{}.Marshal(v)
		}
	})
	b.Run("JSONCodec_with_U+FFFD", func(b *testing.B) {
		w := v
		w.Text = "Buy milk \uFFFD"
		for b.Loop() {
			sinkBytes, _ = event.JSONCodec{}.Marshal(w)
		}
	})
}
