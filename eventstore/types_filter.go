package eventstore

import (
	"strings"
	"unicode/utf8"
)

// typeFilter is the event types a read of the global order selects, and
// how its statement names them.
//
// The names are written into the statement as SQL string literals when
// every one of them can be, so that the database plans the statement for
// those types. On PostgreSQL this matters once a prepared statement is
// planned generically (after five executions, pgx caching it): with the
// types as parameters, the generic plan assumes a type of average
// frequency and reads the global order with a filter, which for a rare
// type means scanning most of the store for each page even when the
// (type, position) index (Options.TypeIndex) would find its events
// directly. With the names in the text, a processor's statement (its
// types never change) is planned for its own types.
type typeFilter struct {
	names   []string
	literal bool
}

// maxLiteralType bounds the length of a type name written as a literal.
const maxLiteralType = 200

func typesOf(names []string) typeFilter {
	tf := typeFilter{names: names, literal: true}
	for _, n := range names {
		// A backslash would be an escape where standard_conforming_strings
		// is off; such names, and odd ones, are bound instead.
		if len(n) > maxLiteralType || !utf8.ValidString(n) || strings.ContainsAny(n, "\\\x00") {
			tf.literal = false
			break
		}
	}
	return tf
}

// filtered reports whether the read is filtered by type.
func (tf typeFilter) filtered() bool { return len(tf.names) > 0 }

// condition returns the statement's type condition, " AND type IN (…)",
// or "" when the read takes every type, with its parameters (if bound)
// numbered from n, and the number of the next parameter.
func (tf typeFilter) condition(p func(int) string, n int) (string, int) {
	if !tf.filtered() {
		return "", n
	}
	var b strings.Builder
	b.WriteString(" AND type IN (")
	for i, name := range tf.names {
		if i > 0 {
			b.WriteString(", ")
		}
		if tf.literal {
			b.WriteByte('\'')
			b.WriteString(strings.ReplaceAll(name, "'", "''"))
			b.WriteByte('\'')
			continue
		}
		b.WriteString(p(n))
		n++
	}
	b.WriteByte(')')
	return b.String(), n
}

// appendArgs appends the types' parameters to args: none when they are
// literals.
func (tf typeFilter) appendArgs(args []any) []any {
	if tf.literal {
		return args
	}
	for _, n := range tf.names {
		args = append(args, n)
	}
	return args
}
