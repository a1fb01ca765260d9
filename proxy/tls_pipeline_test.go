package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
)

// TestTLSPipelinedSets: a client pipelining hundreds of sets in one write
// gets every reply, with TLS on the client side and on both sides.
// memcached 1.6.18 -Z stalls on pipelined command lines split between
// Go's small first records; the proxy writes full records
// (DynamicRecordSizingDisabled). (It also stalls, with any client, openssl's included, on a
// pipeline holding values longer than a record: not tested here, see
// docs/tls.md.)
func TestTLSPipelinedSets(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	for _, backendTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("backend TLS %v", backendTLS), func(t *testing.T) {
			var servers []*memcachedtest.Server
			if backendTLS {
				servers, _ = tlsBackends(t, pki, 3)
			} else {
				servers = []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
			}
			tp := startTLSProxy(t, pki, servers, backendTLS, nil)
			c, err := dialTLS(t, tp.tlsAddr, pki.ClientConfig(t, pki.Leaf(t, "client")))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			const n = 3000
			for i := range n {
				v := strings.Repeat(fmt.Sprint(i), 20)
				fmt.Fprintf(&b, "set p%d 0 0 %d\r\n%s\r\n", i, len(v), v)
			}
			got := memcachedtest.RoundTrip(t, c, b.String(), "\r\n", n)
			if strings.Count(got, "STORED\r\n") != n {
				t.Errorf("%d of %d STORED: %.200q", strings.Count(got, "STORED\r\n"), n, got)
			}
		})
	}
}
