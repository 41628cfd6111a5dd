package eventstore

import "encoding/json"

// decodeMetadata decodes a stored metadata column, a JSON object of string
// values, into a new map. Metadata is written by json.Marshal of a
// map[string]string, so nearly every stored value is a flat object of
// plain strings; those are decoded here directly, several times faster
// than encoding/json, which is what most of a stream read's decoding time
// went to when every event carries metadata. Anything else (escapes,
// non-ASCII bytes, control characters, other value types, malformed input)
// goes to json.Unmarshal, so the result, errors included, is always what
// json.Unmarshal gives.
func decodeMetadata(b []byte) (map[string]string, error) {
	if m, ok := decodeFlatObject(b); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeFlatObject decodes b if it is a JSON object whose keys and values
// are strings of printable ASCII without escapes, and reports whether it
// was. It never reports true for input json.Unmarshal would decode
// differently.
func decodeFlatObject(b []byte) (map[string]string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipSpace(b, i+1) != len(b) {
			return nil, false
		}
		return map[string]string{}, true
	}
	m := make(map[string]string, 4)
	for {
		k, next, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		v, next, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return nil, false
		}
		m[k] = v
		i = skipSpace(b, next)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return nil, false
			}
			return m, true
		default:
			return nil, false
		}
	}
}

// plainString reads a JSON string at b[i] made only of printable ASCII
// other than '\\', returning it and the index after its closing quote.
func plainString(b []byte, i int) (s string, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", 0, false
		}
	}
	return "", 0, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
