package event

import "strconv"

type versionKind uint8

const (
	kindAny versionKind = iota
	kindNoStream
	kindStreamExists
	kindExact
)

// ExpectedVersion is the condition an append places on the current version
// of its stream. The zero value is [Any].
type ExpectedVersion struct {
	kind versionKind
	n    int64
}

var (
	// Any accepts the stream in whatever state it is, new or existing (but
	// not deleted).
	Any = ExpectedVersion{kind: kindAny}
	// NoStream requires that the stream has no events yet.
	NoStream = ExpectedVersion{kind: kindNoStream}
	// StreamExists requires that the stream has at least one event.
	StreamExists = ExpectedVersion{kind: kindStreamExists}
)

// Exact requires that the stream's current version is exactly n. Exact(0)
// means the same as [NoStream]. A negative n is rejected by the store as an
// invalid argument.
func Exact(n int64) ExpectedVersion {
	if n == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: kindExact, n: n}
}

// IsAny reports whether v places no condition on the version.
func (v ExpectedVersion) IsAny() bool { return v.kind == kindAny }

// IsNoStream reports whether v requires that the stream does not exist.
func (v ExpectedVersion) IsNoStream() bool { return v.kind == kindNoStream }

// IsStreamExists reports whether v requires that the stream exists.
func (v ExpectedVersion) IsStreamExists() bool { return v.kind == kindStreamExists }

// Exact returns the exact version v requires and true, or 0 and false when v
// is not an exact version.
func (v ExpectedVersion) Exact() (int64, bool) { return v.n, v.kind == kindExact }

// Valid reports whether v can be checked: every kind is valid except an
// exact version below zero.
func (v ExpectedVersion) Valid() bool { return v.kind != kindExact || v.n > 0 }

// Matches reports whether a stream at version current (0 for a stream with
// no events) satisfies v.
func (v ExpectedVersion) Matches(current int64) bool {
	switch v.kind {
	case kindNoStream:
		return current == 0
	case kindStreamExists:
		return current > 0
	case kindExact:
		return current == v.n
	default:
		return true
	}
}

// String returns "any", "no stream", "stream exists" or the exact version.
func (v ExpectedVersion) String() string {
	switch v.kind {
	case kindNoStream:
		return "no stream"
	case kindStreamExists:
		return "stream exists"
	case kindExact:
		return strconv.FormatInt(v.n, 10)
	default:
		return "any"
	}
}
