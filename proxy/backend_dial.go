package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"golang.org/x/sys/unix"
)

// Reconnect backoff of one backend connection.
const (
	minReconnectBackoff = 10 * time.Millisecond
	maxReconnectBackoff = 1 * time.Second
)

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
		conn, err := p.connect(p.dialCtx, c.b.addr, p.opts.ConnectTimeout)
		var fd int
		if err == nil {
			fd, err = p.takeConn(conn) // tls_backend.go
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

// connect dials the backend and checks that it answers before any request
// is sent. The check matters for a hung host: its kernel still completes
// the TCP handshake, so without it every reconnect after a timeout would
// look healthy and make the next requests wait out a whole timeout again.
// Both steps together are bounded by backend.connect_timeout, and by ctx
// (the proxy shutting down). With backend TLS the dial includes the
// handshake (dialBackend, tls_backend.go).
func (p *Proxy) connect(ctx context.Context, addr string, limit time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	conn, err := p.dialBackend(ctx, addr)
	if err != nil {
		return nil, err
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
