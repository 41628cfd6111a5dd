package eventstore

import (
	"encoding/json"
	"maps"
	"testing"
)

// TestDecodeMetadataMatchesJSON checks that decodeMetadata gives what
// json.Unmarshal gives, value and error alike, on the inputs the fast path
// takes and on those it must hand over.
func TestDecodeMetadataMatchesJSON(t *testing.T) {
	for _, in := range metadataCorpus {
		checkDecodeMetadata(t, []byte(in))
	}
}

// FuzzDecodeMetadata compares decodeMetadata with json.Unmarshal on any
// input.
func FuzzDecodeMetadata(f *testing.F) {
	for _, in := range metadataCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeMetadata(t, b) })
}

var metadataCorpus = []string{
	`{}`, ` { } `, `{"a":"b"}`, `{"user":"u-1","request":"1f0e9a52-7c1d"}`,
	"{\n \"a\" : \"b\" ,\t\"c\":\"\"}", `{"a":"b","a":"c"}`,
	`{"a":"\u00e9"}`, `{"a":"\n"}`, `{"a":"é"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}",
	`{"a":1}`, `{"a":null}`, `{"a":"b",}`, `{"a" "b"}`, `{"a":"b"} x`, `{"a":"b"`, `[]`, `null`, ``, `"x"`,
	`{"a":"b"}{}`, `{,}`, `{"a":"b" "c":"d"}`, `{"a":"\"q\""}`,
}

func checkDecodeMetadata(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := decodeMetadata(b)
	var want map[string]string
	wantErr := json.Unmarshal(b, &want)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decodeMetadata(%q) error = %v; json.Unmarshal's = %v", b, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if !maps.Equal(got, want) || (got == nil) != (want == nil) {
		t.Fatalf("decodeMetadata(%q) = %#v; json.Unmarshal gives %#v", b, got, want)
	}
}

func BenchmarkDecodeMetadata(b *testing.B) {
	in := []byte(`{"request":"1f0e9a52-7c1d-4f43-9a77-3c5b8e2d1a60","user":"bench-user-0042"}`)
	b.Run("flat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeMetadata(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]string
			if err := json.Unmarshal(in, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
