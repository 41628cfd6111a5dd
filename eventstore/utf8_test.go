package eventstore_test

import (
	"bytes"
	"encoding/gob"
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

type utf8Note struct {
	Text string            `json:"text"`
	Tags map[string]string `json:"tags,omitempty"`
}

// gobCodec is a codec that carries any bytes of a string.
type gobCodec struct{}

func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// Event data holding a string that is not valid UTF-8: with the JSON
// codec, which cannot carry it, the append fails with ErrInvalidArgument
// naming the type and the field, and writes nothing; with a codec that
// can, every read returns the bytes that were appended. Both databases
// answer alike. Whatever Append acknowledges is what every read returns.
func TestInvalidUTF8Data(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		open := func(codec event.Codec) *eventstore.Store {
			reg := event.NewRegistry(event.RegistryOptions{Codec: codec})
			event.MustRegister[utf8Note](reg, "test.utf8_note")
			s, err := eventstore.New(db.Gorm, reg, eventstore.Options{Logger: testdb.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s
		}
		ctx := t.Context()

		t.Run("JSON refuses", func(t *testing.T) {
			s := open(nil)
			for _, tt := range []struct {
				data  utf8Note
				field string
			}{
				{utf8Note{Text: "a\xffb"}, ".text"},
				{utf8Note{Text: "ok", Tags: map[string]string{"k": "\xc3"}}, `.tags["k"]`},
				{utf8Note{Tags: map[string]string{"\xfe": "v"}}, ".tags key"},
			} {
				got, err := s.Append(ctx, "json", event.Any, []any{utf8Note{Text: "fine"}, tt.data})
				if !errors.Is(err, eventstore.ErrInvalidArgument) || got != nil {
					t.Errorf("Append(%q) = %v, %v; want ErrInvalidArgument", tt.data, got, err)
					continue
				}
				for _, want := range []string{`"test.utf8_note"`, tt.field, "event 1"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Append(%q) = %v, want an error naming %s", tt.data, err, want)
					}
				}
			}
			if h, err := s.Head(ctx); err != nil || h != 0 {
				t.Errorf("Head() = %d, %v after refused appends; want 0, nil", h, err)
			}
			// What may look like a replacement is stored as given.
			for _, text := range []string{"a\uFFFDb", `a\ufffdb`, "ström ☃"} {
				checkRoundTrip(t, s, "json-valid", utf8Note{Text: text})
			}
		})

		t.Run("a codec that carries the bytes", func(t *testing.T) {
			s := open(gobCodec{})
			checkRoundTrip(t, s, "gob", utf8Note{Text: "a\xffb", Tags: map[string]string{"\xfe": "\xc3"}})
		})
	})
}

// checkRoundTrip appends data and checks that Append and every read
// return it unchanged.
func checkRoundTrip(t *testing.T, s *eventstore.Store, stream string, data utf8Note) {
	t.Helper()
	ctx := t.Context()
	got, err := s.Append(ctx, stream, event.Any, []any{data})
	if err != nil {
		t.Fatalf("Append(%q) = %v", data, err)
	}
	same := func(v any) bool {
		n, ok := v.(utf8Note)
		if !ok || n.Text != data.Text || len(n.Tags) != len(data.Tags) {
			return false
		}
		for k, v := range data.Tags {
			if n.Tags[k] != v {
				return false
			}
		}
		return true
	}
	if !same(got[0].Data) {
		t.Errorf("Append(%q) returned %q", data, got[0].Data)
	}
	read, err := s.ReadEvent(ctx, stream, got[0].Version)
	if err != nil || !same(read.Data) {
		t.Errorf("ReadEvent after Append(%q) = %q, %v", data, read.Data, err)
	}
	for e, err := range s.ReadAll(ctx, got[0].Position-1, 1) {
		if err != nil || !same(e.Data) {
			t.Errorf("ReadAll after Append(%q) = %q, %v", data, e.Data, err)
		}
	}
}
