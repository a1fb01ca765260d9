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

// dialBackend connects to a backend, in TLS when backends speak it, the
// handshake done; ctx bounds both.
func (p *Proxy) dialBackend(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	b := p.tls.backend
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
