package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// backend is one memcached server: its connections, one set per event
// loop, onto which the commands of that loop's client sessions are
// pipelined, and the counters `stats backends` reports.
type backend struct {
	p *Proxy
	// name is the backend's identity on the ring and to the health
	// checker (config: backends[].name, by default the address).
	name string
	addr string // where the connections dial
	// conns holds connsPerLoop connections for each loop, loop by loop;
	// a connection is used only by its loop.
	conns []*backendConn
	// weight is the backend's share of the ring; a reload may change it.
	weight atomic.Int64

	requestsBase atomic.Uint64               // commands sent by a backend this one replaced (inherit)
	failed       [numFailKinds]atomic.Uint64 // commands that got no reply, by why

	// capped: down, but kept in the ring by health.max_ejected; commands
	// to it fail fast. Written by rebuilds (under Proxy.mu), read by
	// sessions.
	capped atomic.Bool
	// cappedEjections counts the times the cap kept it in the ring.
	cappedEjections atomic.Uint64
	// retired: a reload replaced or removed it; its connection failures
	// no longer speak for the backend of its name.
	retired atomic.Bool
	// closed: close has run; its descriptors left the budget.
	closed atomic.Bool
}

// newBackend makes a backend and starts its connections on every loop.
func newBackend(p *Proxy, name, addr string, weight int) *backend {
	b := &backend{p: p, name: name, addr: addr}
	b.weight.Store(int64(weight))
	p.fds.backends.Add(1) // before any connection dials
	for _, l := range p.loops {
		for range p.connsPerLoop {
			c := newBackendConn(b, l)
			b.conns = append(b.conns, c)
			l.post(c.start)
		}
	}
	return b
}

// send forwards r on the connection of the session's loop that the session
// is pinned to. Pinning keeps one client's commands to one backend in
// order, so a client reads its own writes even though connections are
// shared.
func (b *backend) send(s *session, r *request) {
	r.backend = b
	if b.capped.Load() {
		// Down past the ejection cap: fail fast, as with auto_eject off.
		b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	}
	r.deadline = requestDeadline(s.now, b.p.opts.Timeout)
	b.connOf(s).send(r)
}

// connOf returns the connection s sends on.
func (b *backend) connOf(s *session) *backendConn {
	return b.conns[s.l.id*b.p.connsPerLoop+s.connIndex]
}

// requests returns the commands sent to b.
func (b *backend) requests() uint64 {
	n := b.requestsBase.Load()
	for _, c := range b.conns {
		n += c.requests.Load()
	}
	return n
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

// countFailed counts n commands that failed with reason. A backend removed
// by a reload is not a failure of the backend and is not counted.
func (b *backend) countFailed(reason error, n int) {
	var k failKind
	switch reason {
	case errBackendTimeout:
		k = failTimeout
	case errBackendConn:
		k = failConnection
	case errBackendDown:
		k = failDown
	case errBackendProtocol:
		k = failProtocol
	default:
		return
	}
	b.failed[k].Add(uint64(n))
}

// failures returns the commands that failed on b, of every kind.
func (b *backend) failures() uint64 {
	var n uint64
	for i := range b.failed {
		n += b.failed[i].Load()
	}
	return n
}

// reportFailure passes a connection-level failure (refused, reset, timed
// out) to the health checker, which decides whether to eject the backend.
func (b *backend) reportFailure(err error) {
	if !b.retired.Load() {
		b.p.health.ReportFailure(b.name, err)
	}
}

// inherit takes over the counters of old, the backend of the same name
// that a reload respelled to b's address: stats and metrics of one server
// go on counting.
func (b *backend) inherit(old *backend) {
	b.requestsBase.Store(old.requests())
	for i := range b.failed {
		b.failed[i].Store(old.failed[i].Load())
	}
	b.cappedEjections.Store(old.cappedEjections.Load())
	b.capped.Store(old.capped.Load())
}

// retryNow makes connections in reconnect backoff dial again at once.
func (b *backend) retryNow() {
	for _, c := range b.conns {
		c.l.post(c.retryNow)
	}
}

// close ends every connection; queued and in-flight requests fail. It
// returns once each loop has done so.
func (b *backend) close() {
	for _, c := range b.conns {
		c.l.call(c.close)
	}
	if !b.closed.Swap(true) {
		b.p.fds.backends.Add(-1)
		b.p.gate.release() // the budget leaves the clients more
	}
}

// retire ends a backend that a reload removed. The route table no longer
// holds it, but a session that loaded the previous table a moment ago may
// still send to it, and commands already sent are owed their replies: so
// the connections stay open for one backend timeout (by then every request
// sent to it has been answered or has timed out) before they close.
// Shutdown cuts the wait short through stop.
func (b *backend) retire(stop <-chan struct{}) {
	t := time.NewTimer(b.p.opts.Timeout + 2*deadlineQuantum)
	select {
	case <-t.C:
	case <-stop:
		t.Stop()
	}
	b.close()
}

// flushBeforeReadd empties a backend that is about to rejoin the ring.
// While it was out, its keys were set and deleted on the other backends;
// its own copies are stale, and serving them again would undo writes the
// clients saw succeed. Losing them costs only misses. It runs on the
// health checker's goroutine, on a connection of its own, bounded by the
// connect and backend timeouts.
func (p *Proxy) flushBeforeReadd(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, p.opts.ConnectTimeout)
	if err != nil {
		return fmt.Errorf("flush before re-adding: dial %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(p.opts.Timeout))
	if _, err := conn.Write([]byte("flush_all\r\n")); err != nil {
		return fmt.Errorf("flush before re-adding %s: %w", addr, err)
	}
	line, err := bufio.NewReaderSize(conn, 64).ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("flush before re-adding %s: %w", addr, err)
	}
	if !bytes.Equal(line, okLine) {
		return fmt.Errorf("flush before re-adding %s: reply %.64q", addr, line)
	}
	p.log.Info("backend flushed before rejoining the ring", zap.String("backend", addr))
	return nil
}
