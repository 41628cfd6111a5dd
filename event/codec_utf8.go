package event

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// encoding/json replaces the bytes of a string that are not valid UTF-8
// with U+FFFD and reports no error: data encoded that way does not decode
// to what was encoded. [JSONCodec] refuses such data instead. Checking
// every string of every value would cost every encode; a replacement
// always leaves a trace in the output (the escape \ufffd, or the raw bytes
// of U+FFFD with encoding/json v2's replacement), so only an output with
// such a trace has its value walked, and a value whose strings are all
// valid (a real U+FFFD, a literal backslash-u text) is encoded as before.

// replaced reports whether JSON output may hold a replacement character.
func replaced(b []byte) bool {
	return bytes.Contains(b, []byte(`\ufffd`)) || bytes.Contains(b, []byte("\uFFFD"))
}

// checkUTF8 returns an error naming the first string of v, as
// encoding/json encodes v, that is not valid UTF-8, or nil.
func checkUTF8(v any) error {
	var path []string
	if !hasInvalidUTF8(reflect.ValueOf(v), &path, 0) {
		return nil
	}
	if len(path) == 0 {
		return errors.New("json: invalid UTF-8 in the string")
	}
	var b strings.Builder
	for i := len(path) - 1; i >= 0; i-- {
		b.WriteString(path[i])
	}
	return fmt.Errorf("json: invalid UTF-8 in %s", strings.TrimSpace(b.String()))
}

// maxUTF8Depth bounds the walk; encoding/json refuses deeper values (and
// cycles) before the walk starts.
const maxUTF8Depth = 1000

// hasInvalidUTF8 walks v as encoding/json encodes it and reports whether
// it found a string that is not valid UTF-8. Each step of the way to that
// string is appended to path, innermost first.
func hasInvalidUTF8(v reflect.Value, path *[]string, depth int) bool {
	if !v.IsValid() || depth > maxUTF8Depth {
		return false
	}
	t := v.Type()
	if t.Implements(reflect.TypeFor[json.Marshaler]()) {
		return false // encodes itself
	}
	if t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) && v.CanInterface() {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return false
		}
		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		return err == nil && !utf8.Valid(text)
	}
	switch v.Kind() {
	case reflect.String:
		return !utf8.ValidString(v.String())
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && hasInvalidUTF8(v.Elem(), path, depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			if hasInvalidUTF8(v.Field(i), path, depth+1) {
				name, _, _ := strings.Cut(tag, ",")
				if name == "" && f.Anonymous {
					return true // its fields are the struct's own
				}
				if name == "" {
					name = f.Name
				}
				*path = append(*path, "."+name)
				return true
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			key := "?"
			if k.Kind() == reflect.String {
				key = strconv.Quote(k.String())
			} else if k.CanInterface() {
				key = fmt.Sprint(k.Interface())
			}
			if hasInvalidUTF8(k, path, depth+1) {
				*path = append(*path, " key "+key)
				return true
			}
			if hasInvalidUTF8(iter.Value(), path, depth+1) {
				*path = append(*path, "["+key+"]")
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return false // bytes: base64 or numbers
		}
		for i := range v.Len() {
			if hasInvalidUTF8(v.Index(i), path, depth+1) {
				*path = append(*path, "["+strconv.Itoa(i)+"]")
				return true
			}
		}
	}
	return false
}
