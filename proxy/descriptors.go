package proxy

import (
	"fmt"
	"math"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The descriptor budget: how many clients the process's descriptor limit
// (RLIMIT_NOFILE) leaves room for once the proxy's own descriptors are
// reserved, so that clients can never take the descriptors a backend or a
// health probe needs to reconnect. memcached reserves descriptors the same
// way (its reserved_fds, five per worker thread and a few more) and
// refuses to start when -c leaves none for clients.
//
//	reserved = fixedReservedDescriptors
//	         + 2 per event loop                  its epoll and its eventfd
//	         + 2 per listener                    the socket and the acceptor's duplicate
//	         + per backend: 2 × event loops × backend.connections
//	                                             each connection, and a second
//	                                             descriptor for a moment while it
//	                                             is dialed (the socket is taken
//	                                             from the net package); with backend
//	                                             TLS 4: the TLS socket, the two ends
//	                                             of its bridge and a moment's duplicate
//	                       + 2                   its health probe, and the flush
//	                                             before it rejoins the ring
//	         + Options.ReservedFds       the embedding program's own
//	client cap = limit - reserved
//
// At the cap the proxy stops accepting, as at EMFILE (accept.go): new
// clients wait in the listen backlog. Backends a reload removed count
// until their connections have closed. The limit is read at start and
// again whenever the clients reach the cap, so that raising it on a
// running process (prlimit) makes room.
const fixedReservedDescriptors = 16 // stdin/out/err, the Go runtime's poller, the config watcher, a config read, DNS lookups, slack

// descriptorCounts are what the budget counts that changes while the
// proxy runs; any goroutine reads and updates them.
type descriptorCounts struct {
	limit     atomic.Int64 // RLIMIT_NOFILE's soft limit, as last read
	listeners atomic.Int64 // acceptors open (accept.go)
	// loopListeners counts the event loops' duplicates of listening
	// sockets (accept_loop.go).
	loopListeners atomic.Int64
	backends      atomic.Int64 // backends whose connections may be open, retiring ones included
}

// readLimit reads the process's descriptor limit.
func (c *descriptorCounts) readLimit() {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		c.limit.Store(math.MaxInt32) // no limit to speak of
		return
	}
	c.limit.Store(int64(rl.Cur))
}

// descriptorBudget is one reading of the budget's terms.
type descriptorBudget struct {
	limit, loops, conns, listeners, loopDups, backends, extra int
	connFds                                                   int // descriptors per backend connection
}

func (p *Proxy) descriptorBudget() descriptorBudget {
	return descriptorBudget{
		limit:     int(p.fds.limit.Load()),
		loops:     len(p.loops),
		conns:     p.connsPerLoop,
		listeners: int(p.fds.listeners.Load()),
		loopDups:  int(p.fds.loopListeners.Load()),
		backends:  int(p.fds.backends.Load()),
		extra:     p.opts.ReservedFds,
		connFds:   p.tls.backendConnFds(),
	}
}

// reserved returns the descriptors kept from the clients.
func (b descriptorBudget) reserved() int {
	return fixedReservedDescriptors + 2*b.loops + 2*b.listeners + b.loopDups +
		b.backends*(b.connFds*b.loops*b.conns+2) + b.extra
}

// clientCap returns how many clients the limit leaves room for.
func (b descriptorBudget) clientCap() int { return b.limit - b.reserved() }

// tooLow explains a limit that leaves no room for a client.
func (b descriptorBudget) tooLow() error {
	return fmt.Errorf("descriptor limit %d (RLIMIT_NOFILE) leaves no room for clients: %d are reserved "+
		"for %d event loops, %d backends × %d connections per loop, health probes, %d listeners and %d others; "+
		"raise the limit (ulimit -n, systemd LimitNOFILE)",
		b.limit, b.reserved(), b.loops, b.backends, b.conns, b.listeners, b.extra+fixedReservedDescriptors)
}

// clientsAtCap reports whether the clients hold every descriptor the
// budget leaves them. At the cap it reads the limit again first.
func (p *Proxy) clientsAtCap() bool {
	n := int(p.stats.currConnections.Load()) + p.tls.fds()
	if n < p.descriptorBudget().clientCap() {
		return false
	}
	p.fds.readLimit()
	return n >= p.descriptorBudget().clientCap()
}
