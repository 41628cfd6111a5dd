package event

// AppendRequest is one append among several made together (in one
// transaction, say): the arguments of [Appender.Append] as a value. The
// events are appended to the stream StreamID if its version satisfies
// Expected, with Options.
type AppendRequest struct {
	StreamID string
	Expected ExpectedVersion
	Events   []any
	Options  []AppendOption
}
