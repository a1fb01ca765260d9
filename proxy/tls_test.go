package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
	"github.com/mcproxy/mcproxy/internal/tlsfiles"
	"github.com/mcproxy/mcproxy/internal/tools/tlscerts"
)

// tlsProxy is a test proxy with a TLS listener beside its clear-text one.
type tlsProxy struct {
	*testProxy
	tlsAddr string
	pki     *tlstest.PKI // signs the proxy's, the backends' and the clients' certificates
	server  *tlsfiles.Store
}

// openStore opens TLS files, failing the test on error.
func openStore(t *testing.T, f tlsfiles.Files) *tlsfiles.Store {
	t.Helper()
	s, err := tlsfiles.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startTLSProxy starts a proxy in front of servers with a TLS listener
// whose clients must present a certificate pki signed; with backendTLS the
// proxy also speaks TLS to the servers, trusting pki and presenting its
// own certificate.
func startTLSProxy(t *testing.T, pki *tlstest.PKI, servers []*memcachedtest.Server, backendTLS bool, mod func(*Options)) *tlsProxy {
	t.Helper()
	served := make(chan error, 1)
	// Registered first, so it runs after startProxyFor's Shutdown.
	t.Cleanup(func() {
		if err := <-served; err != nil {
			t.Errorf("serve TLS: %v", err)
		}
	})
	cert := pki.Leaf(t, "proxy")
	server := openStore(t, tlsfiles.Files{Cert: cert.Cert, Key: cert.Key, CA: pki.CAFile})
	tp := startProxyFor(t, servers, func(o *Options) {
		// TLS handshakes (two ECDSA signatures and a client certificate
		// each) under -race on a loaded machine take far longer than the
		// clear-text tests' bounds allow: a probe or a first command
		// timing out would eject a healthy backend.
		o.Timeout, o.ConnectTimeout = 5*time.Second, 5*time.Second
		o.Health.Interval, o.Health.Timeout = time.Second, time.Second
		if backendTLS {
			o.BackendTLS = &BackendTLS{Certs: openStore(t, tlsfiles.Files{Cert: cert.Cert, Key: cert.Key, CA: pki.CAFile})}
		}
		if mod != nil {
			mod(o)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { served <- tp.ServeTLS(l, TLSServer{Certs: server, HandshakeTimeout: time.Second}) }()
	return &tlsProxy{testProxy: tp, tlsAddr: l.Addr().String(), pki: pki, server: server}
}

// dialTLS connects to addr in TLS with cfg; the handshake's error, if any,
// is returned.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// tlsBackends starts n memcached -Z that require a client certificate
// pki signed.
func tlsBackends(t *testing.T, pki *tlstest.PKI, n int) ([]*memcachedtest.Server, []*tlstest.Memcached) {
	t.Helper()
	var servers []*memcachedtest.Server
	var mcs []*tlstest.Memcached
	for i := range n {
		m := tlstest.StartMemcached(t, pki.Leaf(t, fmt.Sprintf("memcached%d", i)), pki.CAFile, "-o", "ssl_session_cache")
		servers, mcs = append(servers, m.Server), append(mcs, m)
	}
	return servers, mcs
}

// TestTLSEndToEnd: a client with a certificate the CA signed stores and
// reads keys through the proxy's TLS listener, in the text and the meta
// protocol, and the keys land, over TLS with the proxy's client
// certificate, on memcached -Z backends that require one: mutual TLS on
// both sides.
func TestTLSEndToEnd(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	servers, mcs := tlsBackends(t, pki, 2)
	tp := startTLSProxy(t, pki, servers, true, nil)
	c, err := dialTLS(t, tp.tlsAddr, pki.ClientConfig(t, pki.Leaf(t, "client")))
	if err != nil {
		t.Fatal(err)
	}
	const keys = 20
	var sets, gets strings.Builder
	for i := range keys {
		fmt.Fprintf(&sets, "set tls%d 0 0 2\r\nv%d\r\n", i%10, i%10)
		if i >= 10 {
			fmt.Fprintf(&sets, "ms mtls%d 2\r\nm%d\r\n", i%10, i%10)
		}
	}
	for i := range 10 {
		fmt.Fprintf(&gets, " tls%d", i)
	}
	got := memcachedtest.RoundTrip(t, c, sets.String(), "HD\r\n", 10)
	if strings.Count(got, "STORED\r\n") != keys {
		t.Fatalf("sets over TLS: %q", got)
	}
	got = memcachedtest.RoundTrip(t, c, "get"+gets.String()+"\r\nmg mtls3 v\r\n", "VA 2\r\nm3\r\n", 1)
	for i := range 10 {
		if !strings.Contains(got, fmt.Sprintf("VALUE tls%d 0 2\r\nv%d\r\n", i, i)) {
			t.Fatalf("get over TLS: %q lacks tls%d", got, i)
		}
	}
	// The keys are on the backends, read there through their clear-text
	// listeners: each on the one the ring places it on. (Both are used
	// unless the ring, over these random ports, puts all ten on one.)
	found := 0
	for _, m := range mcs {
		want := 0
		for i := range 10 {
			if locationOf(tp.testProxy, fmt.Sprintf("tls%d", i)) == m.Addr {
				want++
			}
		}
		n := len(strings.Split(memcachedtest.Send(t, m.Plain, "get"+gets.String()+"\r\n", "END\r\n", 1), "VALUE ")) - 1
		if n != want {
			t.Errorf("backend %s holds %d of the keys, the ring places %d there", m.Addr, n, want)
		}
		found += n
	}
	if found != 10 {
		t.Errorf("%d of the 10 keys on the backends", found)
	}
	if n := tp.tls.handshakes.Load(); n != 1 {
		t.Errorf("%d client handshakes counted, want 1", n)
	}
}

// TestTLSClientRefused: a client without a certificate, with one another
// CA signed, or speaking clear text to the TLS port runs no command:
// nothing it sends is stored.
func TestTLSClientRefused(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{memcachedtest.Start(t)}, false, nil)
	other := tlstest.NewPKI(t, "another CA")
	set := "set refused 0 0 1\r\nx\r\n"

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no certificate", pki.ClientConfig(t, tlscerts.Paths{})},
		{"another CA's certificate", func() *tls.Config {
			c := pki.ClientConfig(t, tlscerts.Paths{})
			c.Certificates = other.ClientConfig(t, other.Leaf(t, "intruder")).Certificates
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialTLS(t, tp.tlsAddr, tc.cfg)
			if err == nil {
				// In TLS 1.3 the client's handshake ends before the server
				// has checked its certificate: the refusal comes on the
				// first read.
				_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
				_, _ = c.Write([]byte(set))
				var b [64]byte
				n, rerr := c.Read(b[:])
				if rerr == nil {
					t.Fatalf("the proxy answered %q", b[:n])
				}
				err = rerr
			}
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("refused, but not for the certificate: %v", err)
			}
		})
	}
	t.Run("clear text", func(t *testing.T) {
		c := memcachedtest.Dial(t, tp.tlsAddr)
		_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
		_, _ = c.Write([]byte(set))
		b, err := io.ReadAll(c)
		if err != nil || bytes.Contains(b, []byte("STORED")) {
			t.Errorf("clear text on the TLS port: read %q, %v", b, err)
		}
	})
	if got := memcachedtest.Send(t, tp.backends[0].Addr, "get refused\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Errorf("a refused client stored a value: %q", got)
	}
	// The clients saw their connection end; the proxy counts the failure
	// just after it closes it.
	memcachedtest.WaitFor(t, "3 failed handshakes counted", func() bool { return tp.tls.handshakeFailures.Load() == 3 })
	memcachedtest.WaitFor(t, "no descriptor held for refused clients", func() bool { return tp.tls.fds() == 0 })
}

// TestTLSHandshakeTimeout: a client that connects to the TLS port and
// sends nothing is closed after the handshake timeout (1s here), well
// within 15 s.
func TestTLSHandshakeTimeout(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{memcachedtest.Start(t)}, false, nil)
	c := memcachedtest.Dial(t, tp.tlsAddr)
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	if !errors.Is(err, io.EOF) && !isConnReset(err) {
		t.Fatalf("a stalled handshake was not closed within 15 s: %v", err)
	}
	memcachedtest.WaitFor(t, "the stalled handshake counted as failed", func() bool {
		return tp.tls.handshakeFailures.Load() == 1 && tp.tls.inFlight.Load() == 0
	})
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestTLSUntrustedBackend: a backend whose certificate another CA signed
// is never sent a command: clients get an error, the backend shows down in
// stats backends with the certificate as the reason, and the backend's
// own counters show no command.
func TestTLSUntrustedBackend(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	other := tlstest.NewPKI(t, "another CA")
	m := tlstest.StartMemcached(t, other.Leaf(t, "impostor"), "")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{m.Server}, true, func(o *Options) { o.AutoEject = false })
	c := memcachedtest.Dial(t, tp.addr)
	got := memcachedtest.RoundTrip(t, c, "set k 0 0 1\r\nx\r\nget k\r\n", "\r\n", 2)
	if strings.Contains(got, "STORED") || strings.Contains(got, "VALUE") {
		t.Fatalf("through an untrusted backend: %q", got)
	}
	memcachedtest.WaitFor(t, "the untrusted backend down with the reason", func() bool {
		st := backendStats(t, c, m.Addr)
		return st["state"] == "down" && strings.Contains(st["last_error"], "certificate")
	})
	st := memcachedtest.Stats(t, m.Plain, "")
	for _, k := range []string{"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_misses"} {
		if st[k] != "0" {
			t.Errorf("the untrusted backend's %s is %s", k, st[k])
		}
	}
	if tp.tls.backendFailures.Load() == 0 || tp.tls.backendHandshakes.Load() != 0 {
		t.Errorf("backend handshakes: %d failed, %d made", tp.tls.backendFailures.Load(), tp.tls.backendHandshakes.Load())
	}
}

// TestTLSRotation: a certificate reloaded into the listener's files is
// served to new clients, while a client connected before keeps working;
// a bad new file is refused and the certificate in force stays.
func TestTLSRotation(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{memcachedtest.Start(t)}, false, nil)
	cfg := pki.ClientConfig(t, pki.Leaf(t, "client"))
	served := func() string {
		c, err := dialTLS(t, tp.tlsAddr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	old, err := dialTLS(t, tp.tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "proxy" {
		t.Fatalf("served %q before the rotation", got)
	}
	f := tp.server.Files()
	next, err := pki.CA.Sign("proxy-rotated", time.Time{}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	writeBoth(t, f, next.CertPEM, next.KeyPEM)
	if changed, err := tp.server.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if got := served(); got != "proxy-rotated" {
		t.Errorf("served %q after the rotation", got)
	}
	if got := memcachedtest.RoundTrip(t, old, "set old 0 0 1\r\nx\r\n", "\r\n", 1); got != "STORED\r\n" {
		t.Errorf("the client connected before the rotation: %q", got)
	}
	// A key that does not match the certificate is refused.
	stray, err := pki.CA.Sign("stray", time.Time{}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	writeBoth(t, f, next.CertPEM, stray.KeyPEM)
	if _, err := tp.server.Reload(); err == nil {
		t.Fatal("a mismatched key was accepted")
	}
	if got := served(); got != "proxy-rotated" {
		t.Errorf("served %q after a refused reload", got)
	}
}

func writeBoth(t *testing.T, f tlsfiles.Files, cert, key []byte) {
	t.Helper()
	if err := tlscerts.WriteFile(f.Cert, cert); err != nil {
		t.Fatal(err)
	}
	if err := tlscerts.WriteFile(f.Key, key); err != nil {
		t.Fatal(err)
	}
}

// TestTLSBackendResumption: after a backend connection is lost (the
// backend froze past the request timeout), the proxy's new connection
// resumes the TLS session instead of a full handshake.
func TestTLSBackendResumption(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	servers, _ := tlsBackends(t, pki, 1)
	tp := startTLSProxy(t, pki, servers, true, func(o *Options) {
		o.EventLoops, o.Timeout, o.Health.AlwaysUp = 1, 200*time.Millisecond, true
	})
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.WaitFor(t, "a first set through the TLS backend", func() bool {
		return memcachedtest.RoundTrip(t, c, "set r 0 0 1\r\nx\r\n", "\r\n", 1) == "STORED\r\n"
	})
	made := tp.tls.backendHandshakes.Load()
	if err := servers[0].Freeze(); err != nil {
		t.Fatal(err)
	}
	got := memcachedtest.RoundTrip(t, c, "get r\r\n", "\r\n", 1)
	if err := servers[0].Thaw(); err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(got, "VALUE") {
		t.Fatalf("a frozen backend answered %q", got)
	}
	memcachedtest.WaitFor(t, "a get through the reconnected backend", func() bool {
		return strings.HasPrefix(memcachedtest.RoundTrip(t, c, "get r\r\n", "END\r\n", 1), "VALUE r")
	})
	if tp.tls.backendHandshakes.Load() <= made || tp.tls.backendResumed.Load() == 0 {
		t.Errorf("reconnect: %d handshakes before, %d after, %d resumed", made,
			tp.tls.backendHandshakes.Load(), tp.tls.backendResumed.Load())
	}
}

// TestTLSDrain: Shutdown drains a TLS client as a clear-text one: the
// replies to what it sent arrive, then the connection ends.
func TestTLSDrain(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{memcachedtest.Start(t)}, false, nil)
	c, err := dialTLS(t, tp.tlsAddr, pki.ClientConfig(t, pki.Leaf(t, "client")))
	if err != nil {
		t.Fatal(err)
	}
	if got := memcachedtest.RoundTrip(t, c, "set d 0 0 1\r\nx\r\n", "\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
	if _, err := c.Write([]byte("get d\r\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), memcachedtest.WaitBound)
		defer cancel()
		done <- tp.Shutdown(ctx)
	}()
	b, err := io.ReadAll(c) // to the end the drain makes
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err != nil || !bytes.Equal(b, []byte("VALUE d 0 1\r\nx\r\nEND\r\n")) {
		t.Errorf("drained TLS client read %q", b)
	}
}

// TestTLSOutputLimit: a TLS client that pipelines gets of a huge value and
// never reads is cut off at the hard output limit as a clear-text one is,
// and its bridge ends while the client still reads nothing (goleak checks
// that nothing is left). (A bridge blocked writing to such a client ends
// at bridgeSendTimeout; this test does not get it blocked: the kernel's
// send buffer takes what the proxy writes before the cut.)
func TestTLSOutputLimit(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{memcachedtest.Start(t)}, false, func(o *Options) {
		o.ClientOutputLimit = 1 << 20 // hard limit 2 MiB
		o.MaxItemSize = 64 << 10
	})
	value := strings.Repeat("h", 512<<10)
	memcachedtest.Send(t, tp.backends[0].Addr, fmt.Sprintf("set huge 0 0 %d\r\n%s\r\n", len(value), value), "STORED\r\n", 1)
	// A small receive buffer, so that the proxy's writes to the client
	// block before the client is cut off, as over a slow network.
	d := &net.Dialer{Timeout: time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := tls.DialWithDialer(d, "tcp", tp.tlsAddr, pki.ClientConfig(t, pki.Leaf(t, "client")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() { _, _ = c.Write([]byte(strings.Repeat("get huge\r\n", 100))) }()
	stats := memcachedtest.Dial(t, tp.addr)
	memcachedtest.WaitFor(t, "the TLS client cut off at its output limit", func() bool {
		return parseStats(memcachedtest.RoundTrip(t, stats, "stats\r\n", "END\r\n", 1))["output_limit_disconnects"] == "1"
	})
	memcachedtest.WaitFor(t, "the bridge to end", func() bool { return tp.tls.sessions.Load() == 0 })
	_ = c.SetReadDeadline(time.Now().Add(memcachedtest.WaitBound))
	if _, err := io.Copy(io.Discard, c); isTimeout(err) {
		t.Fatal("the TLS client cut off for its output limit is still connected")
	}
}
