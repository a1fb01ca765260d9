package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
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

// protocolLogInterval spaces out the warnings about one connection's
// protocol errors: a backend that lies on every reply is redialled after
// each, and one line a second says as much as a line per reply.
const protocolLogInterval = time.Second

// Reconnect backoff of one backend connection.
const (
	minReconnectBackoff = 10 * time.Millisecond
	maxReconnectBackoff = 1 * time.Second
)

// deadlineQuantum groups request deadlines: a request's deadline is
// rounded down to it, so a request never waits past the backend timeout.
const deadlineQuantum = 5 * time.Millisecond

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
// written, since memcached answers in order. Dialing (and the check that
// a new connection answers) runs on a goroutine of its own, off the loop,
// which hands the socket over when it is ready.
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

// endTurn is the end-of-turn flush of a connection marked dirty.
func (c *backendConn) endTurn() {
	c.dirty = false
	c.flush()
}

// flush writes what was queued during the turn. A request that already
// waited its whole timeout (say, for a slow dial) is failed rather than
// sent: no client waits past it.
func (c *backendConn) flush() {
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
	return c.inflight.drain()
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

// dial starts a connection attempt on a goroutine of its own, unless one
// is under way; the result comes back to the loop through onDialed.
func (c *backendConn) dial() {
	if c.dialing || c.state == stateClosed || c.fd >= 0 {
		return
	}
	c.dialing = true
	p := c.b.p
	p.dials.Add(1)
	go func() {
		defer p.dials.Done()
		conn, err := connect(p.dialCtx, c.b.addr, p.opts.ConnectTimeout)
		var fd int
		if err == nil {
			fd, err = takeFd(conn)
		}
		if !c.l.post(func() { c.onDialed(fd, err) }) && err == nil {
			unix.Close(fd)
		}
	}()
}

// onDialed takes a new socket, or backs off after a failed dial.
func (c *backendConn) onDialed(fd int, err error) {
	c.dialing = false
	if c.state == stateClosed || c.l.quit {
		if err == nil {
			unix.Close(fd)
		}
		return
	}
	if err == nil {
		c.fd = fd
		c.in = fdReader{fd: fd}
		if err = c.l.register(fd, c, evRead); err != nil {
			unix.Close(fd)
			c.fd = -1
		}
	}
	if err != nil {
		c.b.reportFailure(err)
		reason := errBackendConn
		if isTimeout(err) {
			reason = errBackendTimeout // a hung host accepts, then says nothing
		}
		c.backOff(reason)
		return
	}
	c.rr = protocol.NewReplyReader(&c.in, 0)
	c.state = stateUp
	c.backoff = minReconnectBackoff
	if len(c.queue) > 0 {
		c.l.markConn(c)
	}
}

// backOff fails everything queued and refuses new requests for the
// backoff, so that clients of a dead backend get an answer at once instead
// of waiting, then dials again.
func (c *backendConn) backOff(reason error) {
	c.state = stateDown
	queued := c.queue
	c.queue = nil
	c.b.countFailed(reason, len(queued))
	for _, r := range queued {
		r.fail(reason)
	}
	d := c.backoff
	c.backoff = min(2*c.backoff, maxReconnectBackoff)
	c.retry = time.AfterFunc(d, func() { c.l.post(c.retryDial) })
}

// retryDial ends a backoff: requests queue again while the dial runs.
func (c *backendConn) retryDial() {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
	if c.state != stateDown || c.dialing {
		return
	}
	c.state = stateConnecting
	c.dial()
}

// retryNow ends a reconnect backoff at once: the health checker has seen
// the backend answer again, and requests routed to it from now on should
// wait for a fresh dial rather than fail fast for the rest of the backoff.
// It runs on the loop.
func (c *backendConn) retryNow() {
	if c.state == stateDown && c.fd < 0 {
		c.retryDial()
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

// connect dials the backend and checks that it answers before any request
// is sent. The check matters for a hung host: its kernel still completes
// the TCP handshake, so without it every reconnect after a timeout would
// look healthy and make the next requests wait out a whole timeout again.
// Both steps together are bounded by backend.connect_timeout, and by ctx
// (the proxy shutting down).
func connect(ctx context.Context, addr string, limit time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = checkVersion(conn)
	stop()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("check %s after connecting: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return conn, nil
}

// checkVersion sends "version" and reads the one-line reply.
func checkVersion(conn net.Conn) error {
	if _, err := conn.Write([]byte("version\r\n")); err != nil {
		return err
	}
	var line [128]byte
	n := 0
	for n == 0 || line[n-1] != '\n' {
		if n == len(line) {
			return fmt.Errorf("%w: version reply longer than %d bytes", protocol.ErrBadReply, len(line))
		}
		k, err := conn.Read(line[n:])
		n += k
		if err != nil && (n == 0 || line[n-1] != '\n') {
			return err
		}
	}
	if !bytes.HasPrefix(line[:n], []byte("VERSION ")) {
		return fmt.Errorf("%w: %q to version", protocol.ErrBadReply, line[:n])
	}
	return nil
}

// requestDeadline returns the deadline of a request sent now. It is
// rounded down to the quantum, so a request waits at most the timeout and
// at least the timeout less one quantum; very short timeouts are not
// rounded.
func requestDeadline(now time.Time, timeout time.Duration) time.Time {
	d := now.Add(timeout)
	if timeout < 10*deadlineQuantum {
		return d
	}
	return d.Truncate(deadlineQuantum)
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

// fifo is a growable ring buffer of requests.
type fifo struct {
	buf        []*request
	head, size int
}

func (f *fifo) len() int { return f.size }

func (f *fifo) push(r *request) {
	if f.size == len(f.buf) {
		nb := make([]*request, max(16, 2*len(f.buf)))
		for i := 0; i < f.size; i++ {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.size)%len(f.buf)] = r
	f.size++
}

func (f *fifo) peek() *request {
	if f.size == 0 {
		return nil
	}
	return f.buf[f.head]
}

func (f *fifo) pop() *request {
	r := f.buf[f.head]
	f.buf[f.head] = nil
	f.head = (f.head + 1) % len(f.buf)
	f.size--
	return r
}

// drain removes and returns everything, oldest first.
func (f *fifo) drain() []*request {
	out := make([]*request, 0, f.size)
	for f.size > 0 {
		out = append(out, f.pop())
	}
	return out
}
