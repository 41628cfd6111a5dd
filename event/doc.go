// Package event holds what every other part of Cairn shares: the recorded
// event envelope ([Event]), the expected-version rules of an append
// ([ExpectedVersion]), the errors callers branch on ([ErrVersionConflict],
// [ErrStreamDeleted], …) and the type [Registry] that maps Go types to the
// persisted type names and encodes and decodes their data.
//
// The package imports nothing else of Cairn's, and nothing of gorm:
// aggregates and commands can depend on it without pulling in a database
// driver.
//
// # Type names
//
// Every event type is registered under an explicit, persisted name:
//
//	reg := event.NewRegistry(event.RegistryOptions{})
//	event.MustRegister[TodoAdded](reg, "todo.added")
//
// The name, not the Go type name, is what is stored. Renaming or moving the Go
// type never orphans stored events; changing the name does, so treat it like a
// column name.
//
// # Schema versions and upcasting
//
// A type is registered at a schema version (1 unless [RegisterVersion] says
// otherwise). Every stored event records the schema version it was written
// with. When the shape of a type changes, bump its version and add an
// [Upcaster] per old version that rewrites stored data one version up: data
// written by an older program is upcast step by step to the current shape
// before it is decoded, so old streams still load.
package event
