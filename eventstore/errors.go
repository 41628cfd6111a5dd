package eventstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairnhq/cairn/event"
)

// ErrUnavailable reports that the database could not do what was asked for
// a reason that may pass: the connection was lost or refused, the server
// is shutting down or restarting, or a timeout ran out. The error wraps the
// driver's error as its cause. Nothing was written, except by an append
// that fails with an [*OutcomeUnknownError] (which matches ErrUnavailable
// too): the operation can be tried again.
//
// Appends resolve a lost connection themselves before answering (see
// [Store.Append]); subscriptions reconnect on their own for a while (see
// [Store.SubscribeBatches]).
var ErrUnavailable = errors.New("eventstore: database unavailable")

// OutcomeUnknownError reports an append whose transaction lost its
// connection to the database at a moment when the transaction may have
// committed, and whose outcome the store could not find out before the
// append's context ended or the database stayed unreachable for too long.
// The events may be stored, or not.
//
// Appending again with the same event IDs (event.WithIDs(e.IDs...)) and the
// same expected version is safe: if the events are stored, that append
// returns them; if not, it stores them. Appending again without the IDs
// may store the events twice.
//
// It matches [ErrUnavailable] with [errors.Is].
type OutcomeUnknownError struct {
	// IDs are the IDs of the append's events, in order: the store's own
	// (from Options.NewID) or the ones the append gave.
	IDs []uuid.UUID
	// Err is the last failure of the append.
	Err error
}

// Error describes the failure.
func (e *OutcomeUnknownError) Error() string { return "eventstore: " + e.msg() }

func (e *OutcomeUnknownError) msg() string {
	return "outcome unknown (" + strconv.Itoa(len(e.IDs)) + " events may be stored; append them again with their IDs): " + text(e.Err)
}

// Unwrap returns the failure that left the outcome unknown.
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrUnavailable }

// The store's errors print "eventstore:" once. Each type below has a msg
// method that gives its text without the prefix, which an enclosing error
// of the package uses in place of Error.

// text is err's message without the package prefix when err is one of the
// package's own errors.
func text(err error) string {
	if m, ok := err.(interface{ msg() string }); ok {
		return m.msg()
	}
	return err.Error()
}

// opError is the error of one operation of the store, in the manner of
// fs.PathError: "eventstore: <op> <stream><at>: <cause>". It names the
// stream once: not at all when the cause names it already (a version
// conflict or a decode error of that stream).
type opError struct {
	op     string // "append", "read stream", "subscribe after 5", …
	stream string // the operation's stream or processor; "" when it has none
	at     string // what follows the stream, such as " version 3"
	err    error
}

// fail returns the error of the operation op on stream (or on no stream,
// when stream is ""), with driver errors translated by [translate]. A nil
// err gives nil.
func fail(op, stream, at string, err error) error {
	if err == nil {
		return nil
	}
	return &opError{op: op, stream: stream, at: at, err: translate(err)}
}

func (e *opError) Error() string { return "eventstore: " + e.msg() }

func (e *opError) msg() string {
	var b strings.Builder
	b.WriteString(e.op)
	if e.stream != "" && !names(e.err, e.stream) {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.stream))
		b.WriteString(e.at)
	}
	b.WriteString(": ")
	b.WriteString(text(e.err))
	return b.String()
}

func (e *opError) Unwrap() error { return e.err }

// names reports whether err's message names the stream already.
func names(err error, stream string) bool {
	var vc *event.VersionConflictError
	if errors.As(err, &vc) && vc.StreamID == stream {
		return true
	}
	var de *event.DecodeError
	return errors.As(err, &de) && de.StreamID == stream && de.Position > 0
}

// argError is bad input to a store call; it matches ErrInvalidArgument.
type argError struct{ err error }

// invalid returns an error matching ErrInvalidArgument whose detail is
// formatted as by fmt.Errorf (%w wraps).
func invalid(format string, args ...any) error {
	return &argError{fmt.Errorf(format, args...)}
}

func (e *argError) Error() string        { return "eventstore: " + e.msg() }
func (e *argError) msg() string          { return "invalid argument: " + text(e.err) }
func (e *argError) Unwrap() error        { return e.err }
func (e *argError) Is(target error) bool { return target == ErrInvalidArgument }

// unavailableError is a transient failure of the database; it matches
// ErrUnavailable and wraps the driver's error.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "eventstore: " + e.msg() }
func (e *unavailableError) msg() string          { return "database unavailable: " + text(e.err) }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// translate turns a driver error into the store's own: a lost, refused or
// timed-out connection, a server that is shutting down, starting or out of
// connections, and a write that kept failing on contention with other
// writers become errors matching [ErrUnavailable] that wrap the cause. The
// store's own errors, context errors and any other error pass unchanged.
//
// It is the one place that knows the drivers' errors: callers branch on
// the result with errors.Is, never on the driver's error.
func translate(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if transient(err) {
		return &unavailableError{err}
	}
	return err
}

// transient reports whether err is a failure of the connection or of the
// server that trying again later may cure. The caller's own context
// ending is not one.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, errRetryBatch) {
		// A write that lost to concurrent writers on every attempt.
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08": // connection_exception
			return true
		case "53": // insufficient_resources: too many connections, out of memory or disk
			return true
		}
		switch pe.Code {
		case "57P01", // admin_shutdown: pg_terminate_backend, a fast shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: starting up, shutting down
			"57P05", // idle_session_timeout
			"57014", // query_canceled: statement_timeout
			"55P03", // lock_not_available: lock_timeout
			"25P03": // idle_in_transaction_session_timeout
			return true
		}
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		pgconn.Timeout(err)
}

// unsent reports whether a transient err is known to have happened before
// anything reached the server, so that a write that failed with it cannot
// have committed: no connection could be made, or the driver found the
// connection broken before using it.
func unsent(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err)
}
