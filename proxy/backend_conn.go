package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
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

// deadlineQuantum groups request deadlines so that a connection moves its
// read deadline once per quantum rather than once per reply. Deadlines are
// rounded down, so a request never waits past the backend timeout.
const deadlineQuantum = 5 * time.Millisecond

type connState uint8

const (
	stateConnecting connState = iota // dialing; requests queue and wait
	stateUp                          // connected
	stateDown                        // in reconnect backoff; requests fail fast
	stateClosed                      // removed; requests fail fast
)

// backendConn is one long-lived connection to a backend, shared by many
// client sessions. A writer (the run goroutine) drains the queue into one
// buffered write; a reader parses replies and completes the oldest
// outstanding request, since memcached answers in order.
type backendConn struct {
	b *backend

	mu       sync.Mutex
	state    connState
	conn     net.Conn
	queue    []*request // waiting to be written
	spare    []*request // the writer's other queue buffer
	inflight fifo       // written, waiting for a reply
	readDL   time.Time  // the read deadline currently set on conn

	wake chan struct{} // a request was queued
	kick chan struct{} // the backend is known up again: stop backing off
	stop chan struct{} // closed to end the connection for good
	done chan struct{} // closed when run has returned

	// Owned by the run goroutine: when a protocol error was last logged,
	// and how many came since without a line of their own.
	protoLogged time.Time
	protoQuiet  int
}

func newBackendConn(b *backend) *backendConn {
	c := &backendConn{
		b:    b,
		wake: make(chan struct{}, 1),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go c.run()
	return c
}

// send queues r for this connection, or fails it at once when the
// connection is in backoff or closed: a request never waits for a backend
// that is known to be unreachable.
func (c *backendConn) send(r *request) {
	c.mu.Lock()
	switch c.state {
	case stateDown:
		c.mu.Unlock()
		c.b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	case stateClosed:
		c.mu.Unlock()
		r.fail(errBackendClosed)
		return
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// retryNow ends a reconnect backoff at once: the health checker has seen
// the backend answer again, and requests routed to it from now on should
// wait for a fresh dial rather than fail fast for the rest of the backoff.
func (c *backendConn) retryNow() {
	c.mu.Lock()
	if c.state == stateDown {
		c.state = stateConnecting
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// close ends the connection; requests still queued or in flight fail.
func (c *backendConn) close() {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.state = stateClosed
	c.mu.Unlock()
	close(c.stop)
	<-c.done
}

func (c *backendConn) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// run owns the connection's life: dial, write until something breaks, fail
// what was in flight, back off, dial again.
func (c *backendConn) run() {
	defer close(c.done)
	backoff := minReconnectBackoff
	for !c.stopped() {
		conn, err := c.connect()
		if err != nil {
			c.b.reportFailure(err)
			reason := errBackendConn
			if isTimeout(err) {
				reason = errBackendTimeout // a hung host accepts, then says nothing
			}
			c.backOff(reason, backoff)
			backoff = min(2*backoff, maxReconnectBackoff)
			continue
		}
		backoff = minReconnectBackoff
		c.mu.Lock()
		if c.state == stateClosed {
			c.mu.Unlock()
			conn.Close()
			break
		}
		c.conn, c.state, c.readDL = conn, stateUp, time.Time{}
		c.mu.Unlock()

		readerDone := make(chan error, 1)
		go c.readLoop(conn, readerDone)
		err = c.writeLoop(conn, readerDone)
		conn.Close()
		if rerr := <-readerDone; err == nil || errors.Is(err, net.ErrClosed) {
			err = rerr
		}
		reason := errBackendConn
		switch {
		case isTimeout(err):
			reason = errBackendTimeout
		case errors.Is(err, protocol.ErrBadReply):
			reason = errBackendProtocol
		}

		c.mu.Lock()
		c.conn = nil
		if c.state != stateClosed {
			c.state = stateConnecting
			if reason == errBackendTimeout {
				// A backend that stopped answering is likely hung: fail
				// its requests fast while the reconnect and its check run,
				// rather than let them queue for up to connect_timeout.
				c.state = stateDown
			}
		}
		failed := c.inflight.drain()
		if c.state == stateDown {
			failed = append(failed, c.queue...)
			c.queue = c.queue[:0]
		}
		c.mu.Unlock()
		n := len(failed)
		if reason == errBackendProtocol {
			c.logProtocolError(err)
			n = max(n, 1) // a reply nobody asked for fails no command, but counts
		}
		c.b.countFailed(reason, n)
		for _, r := range failed {
			r.fail(reason)
		}
		if !c.stopped() {
			c.b.reportFailure(fmt.Errorf("backend %s: %w", c.b.addr, err))
		}
	}
	c.mu.Lock()
	c.state = stateClosed
	queued := c.queue
	c.queue = nil
	failed := c.inflight.drain()
	c.mu.Unlock()
	for _, r := range append(queued, failed...) {
		r.fail(errBackendClosed)
	}
}

// logProtocolError warns that a reply did not answer its command, at most
// once per protocolLogInterval; err says what was wrong, with the reply and
// the command quoted and clipped.
func (c *backendConn) logProtocolError(err error) {
	now := time.Now()
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
// Both steps together are bounded by backend.connect_timeout.
func (c *backendConn) connect() (net.Conn, error) {
	addr, limit := c.b.addr, c.b.p.opts.ConnectTimeout
	deadline := time.Now().Add(limit)
	conn, err := net.DialTimeout("tcp", addr, limit)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	_ = conn.SetDeadline(deadline)
	if err := checkVersion(conn); err != nil {
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

// backOff fails everything queued and refuses new requests for d, so that
// clients of a dead backend get an answer at once instead of waiting.
func (c *backendConn) backOff(reason error, d time.Duration) {
	c.mu.Lock()
	if c.state != stateClosed {
		c.state = stateDown
	}
	queued := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.mu.Unlock()
	c.b.countFailed(reason, len(queued))
	for i, r := range queued {
		r.fail(reason)
		queued[i] = nil
	}
	c.spare = queued[:0]
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-c.kick:
		t.Stop()
	case <-c.stop:
		t.Stop()
	}
	c.mu.Lock()
	if c.state != stateClosed {
		c.state = stateConnecting
	}
	c.mu.Unlock()
}

// writeLoop moves queued requests to the in-flight FIFO and writes them in
// one buffered write per batch, until a write fails, the reader stops, or
// the connection is closed.
func (c *backendConn) writeLoop(conn net.Conn, readerDone chan error) error {
	bw := bufio.NewWriterSize(conn, 16<<10)
	timeout := c.b.p.opts.Timeout
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			c.mu.Unlock()
			select {
			case <-c.wake:
				// Let the sessions that are runnable right now queue their
				// commands too, so they leave in this write: one write per
				// batch, not per command, is where a proxy's speed comes from.
				runtime.Gosched()
				continue
			case err := <-readerDone:
				readerDone <- err // run reads it again
				return nil
			case <-c.stop:
				return net.ErrClosed
			}
		}
		c.queue = c.spare[:0]
		wasIdle := c.inflight.len() == 0
		// A request that already waited its whole timeout (say, for a slow
		// dial) is failed rather than sent: no client waits past it.
		now := time.Now()
		live := batch[:0]
		var expired []*request
		for _, r := range batch {
			if r.deadline.Before(now) {
				expired = append(expired, r)
				continue
			}
			c.inflight.push(r)
			live = append(live, r)
		}
		if wasIdle && len(live) > 0 {
			c.setReadDeadlineLocked(live[0].deadline)
		}
		c.mu.Unlock()
		c.b.countFailed(errBackendTimeout, len(expired))
		for _, r := range expired {
			r.fail(errBackendTimeout)
		}

		// The deadline goes on before any byte can reach the socket: a
		// command larger than bw's free space is written by bw.Write
		// itself, and the deadline left from the last batch has long
		// passed on a connection that was idle.
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		for _, r := range live {
			// Once written, a request may complete and be recycled at any
			// moment: touch nothing of it after this Write.
			_, _ = bw.Write(r.out)
		}
		clear(batch)
		err := bw.Flush()
		c.spare = batch[:0]
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

// readLoop parses replies in order and completes the oldest request with
// each. It reports why it stopped on done.
func (c *backendConn) readLoop(conn net.Conn, done chan<- error) {
	rr := protocol.NewReplyReader(conn, 0)
	for {
		if rr.Buffered() == 0 {
			// Block here even with nothing in flight, so a backend that
			// closes an idle connection is noticed at once.
			if err := rr.Fill(); err != nil {
				done <- err
				return
			}
		}
		c.mu.Lock()
		head := c.inflight.peek()
		c.mu.Unlock()
		if head == nil {
			done <- fmt.Errorf("%w: %q with no request outstanding", protocol.ErrBadReply, clip64(rr.Pending()))
			return
		}
		// The reply must answer head's command, its keys in order, or
		// nothing after it on this connection can be trusted.
		if err := rr.ReadReplyTo(head.op, head.out, &head.reply); err != nil {
			if errors.Is(err, protocol.ErrBadReply) {
				err = fmt.Errorf("reply to %q: %w", clip64(commandLine(head.out)), err)
			}
			done <- err
			return
		}
		c.mu.Lock()
		c.inflight.pop()
		if next := c.inflight.peek(); next != nil {
			c.setReadDeadlineLocked(next.deadline)
		} else {
			c.setReadDeadlineLocked(time.Time{})
		}
		c.mu.Unlock()
		head.complete()
	}
}

// setReadDeadlineLocked points the read deadline at the oldest outstanding
// request's deadline. Deadlines are quantized, so this is usually a no-op.
func (c *backendConn) setReadDeadlineLocked(d time.Time) {
	if c.conn == nil || d.Equal(c.readDL) {
		return
	}
	c.readDL = d
	_ = c.conn.SetReadDeadline(d)
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
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
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
