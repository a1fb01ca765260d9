package proxy

import (
	"sync/atomic"
	"time"
)

// backend is one memcached server: a small pool of long-lived connections
// onto which the commands of all client sessions are pipelined, and the
// counters `stats backends` reports.
type backend struct {
	p     *Proxy
	addr  string
	conns []*backendConn
	// weight is the backend's share of the ring; a reload may change it.
	weight atomic.Int64

	requests atomic.Uint64 // commands sent
	errors   atomic.Uint64 // commands that got no reply from it
	timeouts atomic.Uint64 // connections or commands that timed out
}

func newBackend(p *Proxy, addr string, weight int) *backend {
	b := &backend{p: p, addr: addr}
	b.weight.Store(int64(weight))
	n := max(p.opts.Connections, 1)
	b.conns = make([]*backendConn, n)
	for i := range b.conns {
		b.conns[i] = newBackendConn(b)
	}
	return b
}

// send forwards r on the connection this session is pinned to. Pinning keeps
// one client's commands to one backend in order, so a client reads its own
// writes even though connections are shared.
func (b *backend) send(s *session, r *request) {
	r.backend = b
	r.deadline = requestDeadline(s.now, b.p.opts.Timeout)
	b.requests.Add(1)
	b.conns[s.connIndex%len(b.conns)].send(r)
}

// reportFailure passes a connection-level failure (refused, reset, timed
// out) to the health checker, which decides whether to eject the backend.
func (b *backend) reportFailure(err error) {
	if h := b.p.health; h != nil {
		h.ReportFailure(b.addr, err)
	}
}

// close ends every connection; queued and in-flight requests fail.
func (b *backend) close() {
	for _, c := range b.conns {
		c.close()
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
