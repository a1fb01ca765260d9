package proxy

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// protocolLogInterval spaces out the warnings about one connection's
// protocol errors: a backend that lies on every reply is redialled after
// each, and one line a second says as much as a line per reply.
const protocolLogInterval = time.Second

type connState uint8

const (
	stateConnecting connState = iota // dialing; requests queue and wait
	stateUp                          // connected
	stateDown                        // in reconnect backoff; requests fail fast
	stateClosed                      // removed; requests fail fast
)

// backendConn is one long-lived connection from an event loop to a
// backend, shared by the loop's client sessions and owned by the loop:
// every field is the loop goroutine's, except requests (read by stats).
//
// Commands queued during a turn are written at the turn's end in one
// writev; replies are read as they arrive and complete the oldest command
// written, since memcached answers in order (fifo.go). Dialing (and the
// check that a new connection answers) runs on a goroutine of its own, off
// the loop, which hands the socket over when it is ready (backend_dial.go).
type backendConn struct {
	b *backend
	l *eventLoop

	state    connState
	fd       int // -1 when there is no socket
	in       fdReader
	rr       *protocol.ReplyReader
	queue    []*request // waiting to be written at the end of the turn
	inflight fifo       // written, waiting for a reply
	// wq holds the commands written only in part when the socket was full
	// (wqOff bytes of the first are out); wqOwner[i] is wq[i]'s request,
	// nil once that request finished early (its buffer is then the
	// connection's to drop).
	wq        [][]byte
	wqOwner   []*request
	wqOff     int
	iov       []unix.Iovec // writev's scratch space
	wantWrite bool
	dirty     bool

	dialing  bool
	backoff  time.Duration
	retry    *time.Timer   // the end of a backoff
	requests atomic.Uint64 // commands sent, for stats

	// When a protocol error was last logged, and how many came since
	// without a line of their own.
	protoLogged time.Time
	protoQuiet  int
}

func newBackendConn(b *backend, l *eventLoop) *backendConn {
	return &backendConn{b: b, l: l, fd: -1, backoff: minReconnectBackoff}
}

// start registers the connection with its loop and dials; it runs on the
// loop.
func (c *backendConn) start() {
	if c.state == stateClosed || c.l.quit {
		return
	}
	c.l.conns = append(c.l.conns, c)
	c.dial()
}

// send queues r for this connection, or fails it at once when the
// connection is in backoff or closed: a request never waits for a backend
// that is known to be unreachable.
func (c *backendConn) send(r *request) {
	c.requests.Add(1)
	switch c.state {
	case stateDown:
		c.b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	case stateClosed:
		r.fail(errBackendClosed)
		return
	}
	c.queue = append(c.queue, r)
	if c.state == stateUp {
		c.l.markConn(c)
	}
}

// endTurn ends the turn of a connection marked dirty: it writes what was
// queued.
func (c *backendConn) endTurn() {
	c.dirty = false
	c.writeQueued()
}

// writeQueued writes what was queued during the turn. A request that
// already waited its whole timeout (say, for a slow dial) is failed rather
// than sent: no client waits past it.
func (c *backendConn) writeQueued() {
	if c.state != stateUp {
		return
	}
	now := c.l.now
	for i, r := range c.queue {
		c.queue[i] = nil
		if r.deadline.Before(now) {
			c.b.countFailed(errBackendTimeout, 1)
			r.fail(errBackendTimeout)
			continue
		}
		c.inflight.push(r)
		c.wq = append(c.wq, r.out)
		c.wqOwner = append(c.wqOwner, r)
	}
	c.queue = c.queue[:0]
	c.write()
}

// write sends what wq holds, as far as the socket takes it.
func (c *backendConn) write() {
	for len(c.wq) > 0 {
		n, iov, err := writev(c.fd, c.wq, c.wqOff, c.iov)
		c.iov = iov
		if err != nil {
			c.failConn(errBackendConn, fmt.Errorf("backend %s: %w", c.b.addr, err))
			return
		}
		if n == 0 {
			break // the socket is full: wait for EPOLLOUT
		}
		c.advance(n)
	}
	c.setWantWrite(len(c.wq) > 0)
}

// advance drops n written bytes from the front of wq.
func (c *backendConn) advance(n int) {
	i := 0
	for i < len(c.wq) && n > 0 {
		left := len(c.wq[i]) - c.wqOff
		if n < left {
			c.wqOff += n
			n = 0
			break
		}
		n -= left
		c.wqOff = 0
		c.wq[i], c.wqOwner[i] = nil, nil
		i++
	}
	if i > 0 {
		k := copy(c.wq, c.wq[i:])
		copy(c.wqOwner, c.wqOwner[i:])
		clear(c.wq[k:])
		clear(c.wqOwner[k:])
		c.wq, c.wqOwner = c.wq[:k], c.wqOwner[:k]
	}
}

// disown makes the connection the owner of r's command buffer when r
// finishes before all of it was written (memcached answers a too-large
// set before reading its data block): the buffer is dropped once written,
// never reused by another request.
func (c *backendConn) disown(r *request) {
	for i, owner := range c.wqOwner {
		if owner == r {
			c.wqOwner[i] = nil
			r.out = nil
		}
	}
}

func (c *backendConn) setWantWrite(on bool) {
	if c.wantWrite != on && c.fd >= 0 {
		c.wantWrite = on
		ev := uint32(evRead)
		if on {
			ev |= evWrite
		}
		c.l.modify(c.fd, ev)
	}
}

// onEvent handles the socket's readiness.
func (c *backendConn) onEvent(ev uint32) {
	if c.fd < 0 {
		return
	}
	if ev&unix.EPOLLOUT != 0 {
		c.write()
		if c.fd < 0 {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.in.ready()
		c.readReplies()
	}
}

// readReplies parses every reply the socket holds and completes the
// oldest request with each. The reply must answer that request's command,
// its keys in order, or nothing after it on this connection can be
// trusted.
func (c *backendConn) readReplies() {
	for c.fd >= 0 {
		head := c.inflight.peek()
		if head == nil {
			c.readUnasked()
			return
		}
		err := c.rr.ReadReplyTo(head.op, head.out, &head.reply)
		if err == protocol.ErrWouldBlock {
			return
		}
		if err != nil {
			if errors.Is(err, protocol.ErrBadReply) {
				err = fmt.Errorf("reply to %q: %w", clip64(commandLine(head.out)), err)
			}
			c.failConn(reasonOf(err), err)
			return
		}
		c.inflight.pop()
		if len(c.wq) > 0 {
			c.disown(head)
		}
		head.complete()
	}
}

// readUnasked looks at the socket while no reply is expected: the end of
// the stream means the backend closed the connection, and bytes mean it
// sent a reply nobody asked for.
func (c *backendConn) readUnasked() {
	var err error
	if c.rr.Buffered() == 0 {
		err = c.rr.Fill()
		if err == protocol.ErrWouldBlock {
			return
		}
	}
	if err == nil {
		err = fmt.Errorf("%w: %q with no request outstanding", protocol.ErrBadReply, clip64(c.rr.Pending()))
	}
	c.failConn(reasonOf(err), err)
}

// nextDeadline returns the earliest deadline of the connection's requests:
// the oldest written one's, or, while dialing, the oldest queued one's.
func (c *backendConn) nextDeadline() (time.Time, bool) {
	if r := c.inflight.peek(); r != nil {
		return r.deadline, true
	}
	if len(c.queue) > 0 && c.state == stateConnecting {
		return c.queue[0].deadline, true
	}
	return time.Time{}, false
}

// expire fails what waited past its deadline. A request written and not
// answered in time means the backend is slow or hung; the connection is
// closed, since the reply may still come and would answer the wrong
// request, and its requests fail fast while it is redialed.
func (c *backendConn) expire(now time.Time) {
	if r := c.inflight.peek(); r != nil && r.deadline.Before(now) {
		c.failConn(errBackendTimeout, fmt.Errorf("backend %s: %w", c.b.addr, os.ErrDeadlineExceeded))
		return
	}
	if c.state != stateConnecting {
		return
	}
	kept := c.queue[:0]
	for _, r := range c.queue {
		if r.deadline.Before(now) {
			c.b.countFailed(errBackendTimeout, 1)
			r.fail(errBackendTimeout)
			continue
		}
		kept = append(kept, r)
	}
	clear(c.queue[len(kept):])
	c.queue = kept
}

// failConn closes a connection that broke (reason is what its requests
// get; err says what happened) and redials it. After a timeout the backend
// is likely hung: requests fail fast until the new connection has
// answered, rather than queue for up to connect_timeout.
func (c *backendConn) failConn(reason, err error) {
	c.closeSocket()
	failed := c.takeInflight()
	if reason == errBackendTimeout {
		c.state = stateDown
		failed = append(failed, c.queue...)
		clear(c.queue)
		c.queue = c.queue[:0]
	} else {
		c.state = stateConnecting
	}
	n := len(failed)
	if reason == errBackendProtocol {
		c.logProtocolError(err)
		n = max(n, 1) // a reply nobody asked for fails no command, but counts
	}
	c.b.countFailed(reason, n)
	for _, r := range failed {
		r.fail(reason)
	}
	c.b.reportFailure(err)
	c.dial()
}

// takeInflight empties the in-flight FIFO and the write queue.
func (c *backendConn) takeInflight() []*request {
	clear(c.wq)
	clear(c.wqOwner)
	c.wq, c.wqOwner, c.wqOff = c.wq[:0], c.wqOwner[:0], 0
	return c.inflight.takeAll()
}

// closeSocket closes the socket, if any.
func (c *backendConn) closeSocket() {
	if c.fd >= 0 {
		c.l.unregister(c.fd)
		c.fd = -1
		c.wantWrite = false
		c.b.p.gate.release()
	}
}

// close ends the connection for good; requests still queued or in flight
// fail. It runs on the loop.
func (c *backendConn) close() {
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
	c.closeSocket()
	failed := append(c.queue, c.takeInflight()...)
	c.queue = nil
	for _, r := range failed {
		r.fail(errBackendClosed)
	}
	for i, x := range c.l.conns {
		if x == c {
			c.l.conns = append(c.l.conns[:i], c.l.conns[i+1:]...)
			break
		}
	}
}

// logProtocolError warns that a reply did not answer its command, at most
// once per protocolLogInterval; err says what was wrong, with the reply and
// the command quoted and clipped.
func (c *backendConn) logProtocolError(err error) {
	now := c.l.now
	if !c.protoLogged.IsZero() && now.Sub(c.protoLogged) < protocolLogInterval {
		c.protoQuiet++
		return
	}
	c.b.p.log.Warn("backend reply does not answer its command; connection closed",
		zap.String("backend", c.b.addr), zap.Error(err), zap.Int("more_since_last_warning", c.protoQuiet))
	c.protoLogged, c.protoQuiet = now, 0
}
