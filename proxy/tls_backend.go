package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// TLS to the backends. Every connection the proxy opens to a backend goes
// through dialBackend: the event loops' connections (backend_dial.go, then
// bridged onto their loop, tls_bridge.go), health probes, the flush before
// a backend rejoins the ring and metadump's. A backend whose certificate
// does not verify fails the dial before any command is written, so it is
// never sent one; the failure reaches the health checker as any dial
// failure does, with the verification error as its reason (stats
// backends' last_error, the "backend down" log line), and is counted
// (mcproxy_backend_tls_failures_total).

// backendSessionCache is how many TLS sessions the proxy keeps to resume
// on reconnect, over all backends (tls.NewLRUClientSessionCache keys them
// by server name and address).
const backendSessionCache = 1024

// backendTLS is the proxy's TLS client side; it is read-only after New.
type backendTLS struct {
	opts  BackendTLS
	cache tls.ClientSessionCache
}

func newBackendTLS(o *BackendTLS) *backendTLS {
	if o == nil {
		return nil
	}
	return &backendTLS{opts: *o, cache: tls.NewLRUClientSessionCache(backendSessionCache)}
}

// config is the client config for a dial of addr, with the files in
// force now (a rotated CA or client certificate reaches the next dial).
func (b *backendTLS) config(addr string) *tls.Config {
	cur := b.opts.Certs.Current()
	name := b.opts.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(addr)
	}
	c := &tls.Config{
		RootCAs:            cur.CAs, // nil: the system's roots
		ServerName:         name,
		MinVersion:         minVersionOr(b.opts.MinVersion),
		ClientSessionCache: b.cache,
		// Full records from the first byte: Go otherwise starts a
		// connection with records of about 1 KB, splitting a pipelined
		// batch's command lines between records, on which memcached 1.6
		// -Z stalls until more bytes come (TestTLSPipelinedSets).
		DynamicRecordSizingDisabled: true,
	}
	if cur.Cert != nil {
		c.Certificates = []tls.Certificate{*cur.Cert}
	}
	return c
}

// setup builds the TLS of the backends from Options.BackendTLS and
// Options.PoolTLS, at New.
func (t *tlsState) setup(def *BackendTLS, pools map[string]*BackendTLS) {
	t.backend = newBackendTLS(def)
	t.anyBackend = t.backend != nil
	t.pools = make(map[string]*backendTLS, len(pools))
	for name, o := range pools {
		t.pools[name] = newBackendTLS(o) // a session cache per pool
		t.anyBackend = t.anyBackend || o != nil
	}
}

// setBackendTLS maps each backend address of pools to its pool's TLS. It
// runs before the backends of pools are made, whose connections start
// dialling at once: in New, and in Reconfigure under p.mu. A server in
// several pools takes the first pool's (the config makes them agree).
func (p *Proxy) setBackendTLS(pools []Pool) {
	m := make(map[string]*backendTLS)
	for _, pl := range pools {
		t, own := p.tls.pools[pl.Name]
		if !own {
			t = p.tls.backend
		}
		for _, b := range pl.Backends {
			if _, seen := m[b.Addr]; !seen {
				m[b.Addr] = t
			}
		}
	}
	p.tls.byAddr.Store(&m)
}

// backendTLSFor is the TLS of a dial of addr: its pool's, or backend.tls
// for an address in no pool now (a retiring backend's last probe).
func (t *tlsState) backendTLSFor(addr string) *backendTLS {
	if m := t.byAddr.Load(); m != nil {
		if b, ok := (*m)[addr]; ok {
			return b
		}
	}
	return t.backend
}

// dialBackend connects to a backend, in TLS when its pool speaks it, the
// handshake done; ctx bounds both.
func (p *Proxy) dialBackend(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	b := p.tls.backendTLSFor(addr)
	if b == nil {
		return conn, nil
	}
	tc := tls.Client(conn, b.config(addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		p.tls.backendFailures.Add(1)
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	p.tls.backendHandshakes.Add(1)
	if tc.ConnectionState().DidResume {
		p.tls.backendResumed.Add(1)
	}
	return tc, nil
}

// dialBackendTimeout is dialBackend bounded by limit rather than a context.
func (p *Proxy) dialBackendTimeout(addr string, limit time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(p.dialCtx, limit)
	defer cancel()
	return p.dialBackend(ctx, addr)
}

// takeConn hands a connected backend socket to an event loop: a clear-text
// socket's descriptor as it is, a TLS connection through a bridge.
func (p *Proxy) takeConn(conn net.Conn) (int, error) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return takeFd(conn)
	}
	loopFd, local, err := socketPair()
	if err != nil {
		tc.Close()
		return -1, err
	}
	p.bridge(tc, local, true, nil)
	return loopFd, nil
}
