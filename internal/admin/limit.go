package admin

import (
	"net"
	"sync"
)

// MaxConnections caps the admin endpoint's connections open at once. Its
// clients are a few: Prometheus scrapers, the orchestrator's liveness and
// readiness probes, an operator with curl or pprof. Past the cap a new
// connection waits in the listen backlog until one closes, so that the
// endpoint cannot take the descriptors the memcached clients and the
// backends need. A connection that sends nothing is closed after the
// server's ReadHeaderTimeout, one idle between requests after its
// IdleTimeout.
const MaxConnections = 16

// ReservedDescriptors is the most descriptors the endpoint holds at once:
// its listener, MaxConnections connections, and for each a file a request
// may open (the process metrics read /proc). The proxy keeps them out of
// the clients' share of the descriptor limit.
const ReservedDescriptors = 1 + 2*MaxConnections

// limitListener accepts at most cap(sem) connections open at once; Accept
// waits for one to close. Its methods are safe for any goroutine, as the
// http.Server's serving goroutine and connection goroutines call them.
type limitListener struct {
	net.Listener
	sem       chan struct{} // a token per open connection
	done      chan struct{} // closed by Close: a waiting Accept returns
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits until fewer than the cap are open, then accepts.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// Close closes the listener and ends a wait in Accept.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its token back on its first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
