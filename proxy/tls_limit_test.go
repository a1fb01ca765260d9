package proxy

import (
	"io"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
)

// TestTLSMaxConnections: a client past limits.max_connections on the TLS
// port gets memcached's error line, over TLS after the handshake, as on
// the clear-text port, then the end of the connection; the client within
// the limit keeps working.
func TestTLSMaxConnections(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	tp := startTLSProxy(t, pki, []*memcachedtest.Server{memcachedtest.Start(t)}, false, func(o *Options) { o.MaxConnections = 1 })
	cfg := pki.ClientConfig(t, pki.Leaf(t, "client"))
	a, err := dialTLS(t, tp.tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := memcachedtest.RoundTrip(t, a, "set m 0 0 1\r\nx\r\n", "\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("first client: %q", got)
	}
	b, err := dialTLS(t, tp.tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
	got, err := io.ReadAll(b)
	if string(got) != tooManyConnections {
		t.Fatalf("second client read %q, %v; want %q", got, err, tooManyConnections)
	}
	if got := memcachedtest.RoundTrip(t, a, "get m\r\n", "END\r\n", 1); got != "VALUE m 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("first client after the refusal: %q", got)
	}
	if n := tp.stats.rejectedConnections.Load(); n != 1 {
		t.Errorf("rejected_connections %d, want 1", n)
	}
	memcachedtest.WaitFor(t, "no descriptor held for the refused client", func() bool { return tp.tls.fds() == 2 })
}
