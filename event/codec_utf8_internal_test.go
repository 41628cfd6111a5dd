package event

import (
	"encoding/json"
	"testing"
)

// The whole cost the check adds to encoding ordinary event data: two
// searches of the JSON output for a replacement character.
func BenchmarkReplacedScan(b *testing.B) {
	out, err := json.Marshal(map[string]any{"todo_id": "4f7c1a52-8d1e-4a8b-9b7e-0c2d6f1e3a90",
		"title": "Buy milk, eggs and bread", "due": "2017-06-13", "done": false})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if replaced(out) {
			b.Fatal("replaced")
		}
	}
}
