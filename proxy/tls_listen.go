package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mcproxy/mcproxy/internal/tlsfiles"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The TLS listener. Its acceptor is Serve's (accept.go), with the same
// descriptor budget and pauses; what it accepts goes to a handshake
// goroutine instead of straight to a loop. A client whose handshake fails
// (no certificate, one from another CA, clear text on the TLS port) or
// does not finish within the handshake timeout is closed, having run no
// command. A client that completes it is bridged (tls_bridge.go) and
// admitted as any client.

// tlsServer is one TLS listener's handshake side; any goroutine uses it.
type tlsServer struct {
	p    *Proxy
	opts TLSServer
	base *tls.Config // hands each handshake the files in force (configFor)
	conf atomic.Pointer[serverConf]
	wg   *sync.WaitGroup // the proxy's handshakes under way
}

// serverConf is the config made from one reading of the files.
type serverConf struct {
	loaded *tlsfiles.Loaded
	cfg    *tls.Config
}

// ServeTLS is Serve for a TLS listener: each client's TLS handshake runs
// first, bounded by o.HandshakeTimeout, and a client whose handshake
// fails runs no command. o.Certs is read at every handshake, so reloading
// it (tlsfiles.Store.Reload) rotates the certificate for new clients
// while connected ones keep theirs.
func (p *Proxy) ServeTLS(l net.Listener, o TLSServer) error {
	if o.Certs == nil || o.Certs.Current().Cert == nil {
		return errors.New("proxy: serve TLS: no certificate")
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	o.MinVersion = minVersionOr(o.MinVersion)
	t := &tlsServer{p: p, opts: o, wg: &p.tls.handshaking}
	t.base = &tls.Config{MinVersion: o.MinVersion, GetConfigForClient: t.configFor}
	return p.serve(l, t)
}

// configFor returns the server config of the files in force, made once
// per reading.
func (t *tlsServer) configFor(*tls.ClientHelloInfo) (*tls.Config, error) {
	cur := t.opts.Certs.Current()
	if sc := t.conf.Load(); sc != nil && sc.loaded == cur {
		return sc.cfg, nil
	}
	c := &tls.Config{Certificates: []tls.Certificate{*cur.Cert}, MinVersion: t.opts.MinVersion}
	if cur.CAs != nil {
		c.ClientCAs, c.ClientAuth = cur.CAs, tls.RequireAndVerifyClientCert
	}
	t.conf.Store(&serverConf{loaded: cur, cfg: c})
	return c, nil
}

// maxTLSRefusals bounds the clients past limits.max_connections that are
// refused with memcached's error line at once: the line goes over TLS,
// after a handshake, which takes a goroutine and a descriptor for up to
// the handshake timeout. Past the bound a client is closed without it, so
// a flood beyond the limit cannot hold more than this.
const maxTLSRefusals = 16

// start takes an accepted socket, on the acceptor's goroutine: past
// limits.max_connections (handshakes under way count) it is refused
// (refuse), else its handshake starts.
func (t *tlsServer) start(fd int, sa unix.Sockaddr, tcp bool) {
	p := t.p
	if p.stats.currConnections.Load()+p.tls.inFlight.Load() >= int64(p.opts.MaxConnections) {
		p.stats.rejectedConnections.Add(1)
		if p.tls.refusing.Add(1) > maxTLSRefusals {
			p.tls.refusing.Add(-1)
			_ = unix.Close(fd)
			p.gate.release()
			return
		}
		t.wg.Add(1)
		go t.refuse(fd, sa)
		return
	}
	if tcp {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	p.tls.inFlight.Add(1)
	t.wg.Add(1)
	go t.handshake(fd, sa)
}

// refuse tells a client past limits.max_connections so as the clear-text
// port does, with memcached's "ERROR Too many open connections", over TLS
// once the handshake is done, and closes it. A client that fails the
// handshake is closed as any.
func (t *tlsServer) refuse(fd int, sa unix.Sockaddr) {
	p := t.p
	defer t.wg.Done()
	defer p.gate.release()
	defer p.tls.refusing.Add(-1)
	f := os.NewFile(uintptr(fd), "tls client")
	conn, err := net.FileConn(f) // a duplicate, on the runtime poller
	f.Close()
	if err != nil {
		return
	}
	defer conn.Close()
	tc := tls.Server(conn, t.base)
	ctx, cancel := context.WithTimeout(p.dialCtx, t.opts.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		p.tls.handshakeFailures.Add(1)
		p.log.Debug("TLS client refused", zap.String("client", sockaddrString(sa)), zap.Error(err))
		return
	}
	// The line is one small record: the handshake's bound covers it.
	deadline, _ := ctx.Deadline()
	_ = tc.SetWriteDeadline(deadline)
	_, _ = tc.Write([]byte(tooManyConnections))
	_ = tc.Close()
}

// handshake runs one client's handshake on a goroutine of its own and
// hands the client to a loop through a bridge.
func (t *tlsServer) handshake(fd int, sa unix.Sockaddr) {
	p := t.p
	defer t.wg.Done()
	failed := func(conn net.Conn, err error) {
		if conn != nil {
			_ = conn.Close()
		}
		p.tls.handshakeFailures.Add(1)
		p.tls.inFlight.Add(-1)
		p.gate.release()
		p.log.Debug("TLS client refused", zap.String("client", sockaddrString(sa)), zap.Error(err))
	}
	f := os.NewFile(uintptr(fd), "tls client")
	conn, err := net.FileConn(f) // a duplicate, on the runtime poller
	f.Close()
	if err != nil {
		failed(nil, err)
		return
	}
	tc := tls.Server(conn, t.base)
	ctx, cancel := context.WithTimeout(p.dialCtx, t.opts.HandshakeTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		failed(conn, err)
		return
	}
	loopFd, local, err := socketPair()
	if err != nil {
		failed(conn, err)
		return
	}
	p.tls.handshakes.Add(1)
	p.tls.sessions.Add(1)
	p.tls.inFlight.Add(-1)
	p.bridge(tc, local, false, func() {
		p.tls.sessions.Add(-1)
		p.gate.release()
	})
	p.admit(loopFd, sa, false)
}
