package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// Codec turns event data into bytes and back. Implementations must be safe
// for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer.
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default [Codec], using encoding/json.
type JSONCodec struct{}

// Marshal encodes v as JSON. A string in v that is not valid UTF-8 is an
// error naming where it is: JSON cannot carry it, and encoding/json would
// silently replace its bad bytes, so that the data would not decode to v.
func (JSONCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err == nil && replaced(b) {
		err = checkUTF8(v)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Unmarshal decodes JSON data into v.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Upcaster rewrites data stored at one schema version of a type into the
// shape of the next version. It receives and returns codec-encoded bytes.
type Upcaster func(data []byte) ([]byte, error)

// RegistryOptions configures a [Registry]. The zero value is ready to use.
type RegistryOptions struct {
	// Codec encodes and decodes event data; nil means [JSONCodec].
	Codec Codec
}

// Registry maps Go types to persisted type names and encodes and decodes
// event data. Create one with [NewRegistry] and register every event type at
// start-up; a Registry is safe for concurrent use, including registration
// while other goroutines encode and decode.
type Registry struct {
	codec Codec
	mu    sync.Mutex // serializes writers of types
	types atomic.Pointer[typeTables]
}

type typeTables struct {
	byName map[string]*typeInfo
	byType map[reflect.Type]*typeInfo
}

type typeInfo struct {
	name      string
	goType    reflect.Type
	version   int
	upcasters map[int]Upcaster // from version → from+1
	decode    func(c Codec, data []byte) (any, error)
}

// NewRegistry returns an empty registry.
func NewRegistry(opts RegistryOptions) *Registry {
	r := &Registry{codec: opts.Codec}
	if r.codec == nil {
		r.codec = JSONCodec{}
	}
	r.types.Store(&typeTables{byName: map[string]*typeInfo{}, byType: map[reflect.Type]*typeInfo{}})
	return r
}

// Codec returns the registry's codec.
func (r *Registry) Codec() Codec { return r.codec }

// Register records T under the persisted name at schema version 1. It fails
// when the name or the type is registered already, when the name is empty,
// or when T is an interface type.
func Register[T any](r *Registry, name string) error {
	return RegisterVersion[T](r, name, 1)
}

// RegisterVersion records T under the persisted name at the given schema
// version (1 or more). Stored data of older versions is upcast with the
// upcasters added by [Registry.AddUpcaster].
func RegisterVersion[T any](r *Registry, name string, version int) error {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("event: register %q: %v is an interface type, want a concrete type", name, t)
	}
	if name == "" {
		return fmt.Errorf("event: register %v: empty type name", t)
	}
	if version < 1 {
		return fmt.Errorf("event: register %q: schema version %d, want 1 or more", name, version)
	}
	info := &typeInfo{
		name:    name,
		goType:  t,
		version: version,
		decode: func(c Codec, data []byte) (any, error) {
			var v T
			if err := c.Unmarshal(data, &v); err != nil {
				return nil, err
			}
			return v, nil
		},
	}
	return r.update(func(tt *typeTables) error {
		if old, ok := tt.byName[name]; ok {
			return fmt.Errorf("event: register %q: name already registered for %v", name, old.goType)
		}
		if old, ok := tt.byType[t]; ok {
			return fmt.Errorf("event: register %q: %v already registered as %q", name, t, old.name)
		}
		tt.byName[name] = info
		tt.byType[t] = info
		return nil
	})
}

// MustRegister is like [Register] but panics on error. It is meant for
// start-up code, where a failing registration is a programming mistake.
func MustRegister[T any](r *Registry, name string) {
	if err := Register[T](r, name); err != nil {
		panic(err)
	}
}

// AddUpcaster registers up to rewrite data of the named type stored at
// schema version from into version from+1. The type must be registered
// first, and from must be below its current version.
func (r *Registry) AddUpcaster(name string, from int, up Upcaster) error {
	if up == nil {
		return fmt.Errorf("event: upcaster for %q version %d: nil function", name, from)
	}
	return r.update(func(tt *typeTables) error {
		old, ok := tt.byName[name]
		if !ok {
			return fmt.Errorf("event: upcaster for %q: %w", name, ErrUnknownType)
		}
		if from < 1 || from >= old.version {
			return fmt.Errorf("event: upcaster for %q from version %d: current version is %d", name, from, old.version)
		}
		if _, dup := old.upcasters[from]; dup {
			return fmt.Errorf("event: upcaster for %q from version %d: already registered", name, from)
		}
		info := *old
		info.upcasters = make(map[int]Upcaster, len(old.upcasters)+1)
		for k, v := range old.upcasters {
			info.upcasters[k] = v
		}
		info.upcasters[from] = up
		tt.byName[name] = &info
		tt.byType[info.goType] = &info
		return nil
	})
}

// update applies fn to a copy of the type tables and publishes the copy.
func (r *Registry) update(fn func(*typeTables) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.types.Load()
	next := &typeTables{
		byName: make(map[string]*typeInfo, len(cur.byName)+1),
		byType: make(map[reflect.Type]*typeInfo, len(cur.byType)+1),
	}
	for k, v := range cur.byName {
		next.byName[k] = v
	}
	for k, v := range cur.byType {
		next.byType[k] = v
	}
	if err := fn(next); err != nil {
		return err
	}
	r.types.Store(next)
	return nil
}

func (r *Registry) lookupValue(data any) (*typeInfo, error) {
	if data == nil {
		return nil, errors.New("event: nil event data")
	}
	tables := r.types.Load()
	t := reflect.TypeOf(data)
	if info, ok := tables.byType[t]; ok {
		return info, nil
	}
	if t.Kind() == reflect.Pointer {
		if info, ok := tables.byType[t.Elem()]; ok {
			return info, nil
		}
	}
	return nil, fmt.Errorf("%w: Go type %v is not registered", ErrUnknownType, t)
}

// TypeName returns the persisted name of data's type (or of the type it
// points to).
func (r *Registry) TypeName(data any) (string, error) {
	info, err := r.lookupValue(data)
	if err != nil {
		return "", err
	}
	return info.name, nil
}

// Known reports whether a type is registered under name.
func (r *Registry) Known(name string) bool {
	_, ok := r.types.Load().byName[name]
	return ok
}

// Names returns the registered type names in no particular order.
func (r *Registry) Names() []string {
	tables := r.types.Load()
	names := make([]string, 0, len(tables.byName))
	for n := range tables.byName {
		names = append(names, n)
	}
	return names
}

// Encoded is event data ready to store.
type Encoded struct {
	Type          string
	SchemaVersion int
	Data          []byte
}

// Encode looks up data's type and encodes it with the codec. A nil pointer,
// nil data or an unregistered type is an error.
func (r *Registry) Encode(data any) (Encoded, error) {
	info, err := r.lookupValue(data)
	if err != nil {
		return Encoded{}, err
	}
	if v := reflect.ValueOf(data); v.Kind() == reflect.Pointer && v.IsNil() {
		return Encoded{}, fmt.Errorf("event: encode %q: nil pointer", info.name)
	}
	b, err := r.codec.Marshal(data)
	if err != nil {
		return Encoded{}, fmt.Errorf("event: encode %q: %w", info.name, err)
	}
	return Encoded{Type: info.name, SchemaVersion: info.version, Data: b}, nil
}

// Decode upcasts data stored at schemaVersion to the type's current version
// and decodes it into a value of the registered Go type. Failures are
// *DecodeError values (without a position; the store adds it).
func (r *Registry) Decode(typeName string, schemaVersion int, data []byte) (any, error) {
	info, ok := r.types.Load().byName[typeName]
	if !ok {
		return nil, &DecodeError{Type: typeName, SchemaVersion: schemaVersion, Err: ErrUnknownType}
	}
	if schemaVersion > info.version {
		return nil, &DecodeError{Type: typeName, SchemaVersion: schemaVersion,
			Err: fmt.Errorf("stored schema version is newer than the registered version %d", info.version)}
	}
	for v := schemaVersion; v < info.version; v++ {
		up, ok := info.upcasters[v]
		if !ok {
			return nil, &DecodeError{Type: typeName, SchemaVersion: schemaVersion,
				Err: fmt.Errorf("no upcaster from schema version %d", v)}
		}
		next, err := up(data)
		if err != nil {
			return nil, &DecodeError{Type: typeName, SchemaVersion: schemaVersion,
				Err: fmt.Errorf("upcast from schema version %d: %w", v, err)}
		}
		data = next
	}
	val, err := info.decode(r.codec, data)
	if err != nil {
		return nil, &DecodeError{Type: typeName, SchemaVersion: schemaVersion, Err: err}
	}
	return val, nil
}
