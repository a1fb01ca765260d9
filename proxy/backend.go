package proxy

import (
	"sync/atomic"
	"time"
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
func newBackend(p *Proxy, name, addr string) *backend {
	b := &backend{p: p, name: name, addr: addr}
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
func (b *backend) connOf(s *session) *backendConn { return b.connOn(s.l, s.connIndex) }

// connOn returns connection idx of loop l.
func (b *backend) connOn(l *eventLoop, idx int) *backendConn {
	return b.conns[l.id*b.p.connsPerLoop+idx]
}

// requests returns the commands sent to b.
func (b *backend) requests() uint64 {
	n := b.requestsBase.Load()
	for _, c := range b.conns {
		n += c.requests.Load()
	}
	return n
}

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

// deadlineQuantum groups request deadlines: a request's deadline is
// rounded down to it, so a request never waits past the backend timeout.
const deadlineQuantum = 5 * time.Millisecond

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
