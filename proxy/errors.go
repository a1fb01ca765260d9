package proxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"

	"github.com/mcproxy/mcproxy/protocol"
)

// Errors a client sees, after "SERVER_ERROR ", when its backend fails.
var (
	errBackendTimeout = errors.New("backend timeout")
	errBackendConn    = errors.New("backend connection failed")
	errBackendDown    = errors.New("backend unavailable")
	errNoBackends     = errors.New("no backends available")
	errBackendClosed  = errors.New("backend removed")
	// errBackendProtocol: a reply on the connection did not answer its
	// command, so none of the replies after it can be trusted.
	errBackendProtocol = errors.New("backend protocol error")
)

// reasonOf classifies the error that ended a connection as the clients of
// its requests see it.
func reasonOf(err error) error {
	switch {
	case isTimeout(err):
		return errBackendTimeout
	case errors.Is(err, protocol.ErrBadReply):
		return errBackendProtocol
	}
	return errBackendConn
}

// commandLine is the first line of cmd, without its CRLF: a storage
// command's data block stays out of the logs.
func commandLine(cmd []byte) []byte {
	if i := bytes.IndexByte(cmd, '\r'); i >= 0 {
		return cmd[:i]
	}
	return cmd
}

// clip64 bounds what a log line quotes of the backend's bytes.
func clip64(b []byte) []byte { return b[:min(len(b), 64)] }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// failKind says why a command got no reply from its backend.
type failKind uint8

const (
	failTimeout    failKind = iota // no reply within backend.timeout
	failConnection                 // refused, reset, or closed under it
	failDown                       // not sent: the backend is known down
	// failProtocol: in flight on a connection closed because a reply did
	// not answer its command (a VALUE for a key not asked, a reply of the
	// wrong kind, bytes that are no reply). A reply that came with nothing
	// in flight fails no command but is counted once.
	failProtocol
	numFailKinds
)

// failKindNames label the kinds in stats and metrics.
var failKindNames = [numFailKinds]string{"timeout", "connection", "down", "protocol"}
