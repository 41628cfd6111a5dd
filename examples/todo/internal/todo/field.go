package todo

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Field is a text field of a command or an event that a client may send
// with a string, send as null, or leave out. The three cases matter: an
// amend changes only the fields it was sent, and a null it was sent clears
// the field.
//
// In JSON, a Field is a string or null; as a struct field tagged
// `json:",omitzero"`, an absent Field is left out.
type Field struct {
	state fieldState
	value string
}

type fieldState uint8

const (
	absent fieldState = iota
	null
	present
)

// Text returns a Field holding s.
func Text(s string) Field { return Field{state: present, value: s} }

// Null returns a Field sent as null.
func Null() Field { return Field{state: null} }

// Sent reports whether the field was sent, as a string or as null.
func (f Field) Sent() bool { return f.state != absent }

// Get returns the field's string, and false when the field is null or absent.
func (f Field) Get() (string, bool) { return f.value, f.state == present }

// Value returns the field as a database value: its string, or nil when the
// field is null or absent.
func (f Field) Value() any {
	if f.state != present {
		return nil
	}
	return f.value
}

// IsZero reports whether the field is absent, for `json:",omitzero"`.
func (f Field) IsZero() bool { return f.state == absent }

// MarshalJSON encodes the field as a JSON string, or null.
func (f Field) MarshalJSON() ([]byte, error) {
	if f.state != present {
		return []byte("null"), nil
	}
	return json.Marshal(f.value)
}

// errNotText reports JSON that is neither a string nor null.
var errNotText = errors.New("todo: field must be a string or null")

// UnmarshalJSON decodes a JSON string or null; anything else is an error.
func (f *Field) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		*f = Null()
		return nil
	}
	if len(data) == 0 || data[0] != '"' {
		return errNotText
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*f = Text(s)
	return nil
}
