package soak

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// cmdKind is a command the workload sends.
type cmdKind uint8

const (
	cmdSet cmdKind = iota
	cmdCas
	cmdDelete
	cmdGet
	cmdGets
	cmdIncr
	cmdAdd
	numCmds
)

var cmdNames = [numCmds]string{"set", "cas", "delete", "get", "gets", "incr", "add"}

// replyKind is an answer the workload reads, errors aside.
type replyKind uint8

const (
	replyStored replyKind = iota
	replyNotStored
	replyExists
	replyNotFound
	replyDeleted
	replyNumber
	replyIncrMiss
	replyHit
	replyMiss
	numReplies
)

var replyNames = [numReplies]string{"stored", "not_stored", "exists", "not_found", "deleted", "incr_value", "incr_not_found", "hit", "miss"}

// errKind is a class of failed command.
type errKind uint8

const (
	errServer   errKind = iota // SERVER_ERROR reply
	errClient                  // CLIENT_ERROR reply
	errError                   // ERROR reply
	errTimeout                 // no reply within the reply timeout
	errConn                    // connection closed or reset
	errProtocol                // reply malformed or not the command's
	errDial                    // could not connect to the proxy
	numErrs
)

var errNames = [numErrs]string{"server_error", "client_error", "error", "timeout", "connection", "protocol", "dial"}

// maxErrExamples is how many distinct messages are kept per error kind.
const maxErrExamples = 3

// counts are the workload's counters, shared by all its connections.
type counts struct {
	sent      [numCmds]atomic.Int64
	keysRead  atomic.Int64 // keys asked for by get and gets
	replies   [numReplies]atomic.Int64
	errs      [numErrs]atomic.Int64
	lostReads atomic.Int64 // keys of gets that got no answer, so no verdict
	lostIncrs atomic.Int64 // incrs that got no answer (possibly applied)
	failedW   atomic.Int64 // writes whose outcome is unknown (possibly applied)

	mu       sync.Mutex
	examples [numErrs][]string
}

// noteErr counts an error of kind k and keeps its message if it is new.
func (c *counts) noteErr(k errKind, msg string) {
	c.errs[k].Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	ex := c.examples[k]
	if len(ex) >= maxErrExamples {
		return
	}
	for _, e := range ex {
		if e == msg {
			return
		}
	}
	c.examples[k] = append(ex, msg)
}

// classifyErr tells a read or write error's kind.
func classifyErr(err error) errKind {
	var ne net.Error
	switch {
	case errors.Is(err, textclient.ErrProtocol):
		return errProtocol
	case errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	}
	return errConn
}

// replyErrKind tells the kind of an error reply (one of textclient's Err*Reply).
func replyErrKind(err error) errKind {
	switch err {
	case textclient.ErrServerError:
		return errServer
	case textclient.ErrClientError:
		return errClient
	}
	return errError
}
