package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
	"github.com/mcproxy/mcproxy/internal/tlsfiles"
)

// TestTLSPerPool: a pool over TLS (memcached -Z requiring the proxy's
// client certificate) beside a clear-text pool: the keys of each route
// reach their pool's backend, each spoken to its own way. Both ways of
// saying it: a pool's own TLS over clear-text backends by default, and a
// pool's own clear text over TLS by default.
func TestTLSPerPool(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure func(o *Options, b *BackendTLS) // gives the pool "secure" TLS b, "plain" none
	}{
		{"own TLS beside clear-text default", func(o *Options, b *BackendTLS) {
			o.PoolTLS = map[string]*BackendTLS{"secure": b}
		}},
		{"own clear text beside TLS default", func(o *Options, b *BackendTLS) {
			o.BackendTLS, o.PoolTLS = b, map[string]*BackendTLS{"plain": nil}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := tlstest.NewPKI(t, "mcproxy test CA")
			servers, mcs := tlsBackends(t, pki, 1)
			plain := memcachedtest.Start(t)
			tp := startSecureAndPlain(t, pki, servers[0].Addr, plain.Addr, tc.secure)
			c := memcachedtest.Dial(t, tp.addr)
			for i := range 10 {
				for _, k := range []string{fmt.Sprintf("sec:%d", i), fmt.Sprintf("pub:%d", i)} {
					set := fmt.Sprintf("set %s 0 0 1\r\nx\r\n", k)
					memcachedtest.WaitFor(t, "set "+k, func() bool {
						return memcachedtest.RoundTrip(t, c, set, "\r\n", 1) == "STORED\r\n"
					})
				}
			}
			for i := range 10 {
				// The TLS backend is looked at through its notls: listener.
				for _, w := range []struct{ addr, key string }{
					{mcs[0].Plain, fmt.Sprintf("sec:%d", i)}, {plain.Addr, fmt.Sprintf("pub:%d", i)},
				} {
					got := memcachedtest.Send(t, w.addr, "get "+w.key+"\r\n", "END\r\n", 1)
					if !strings.HasPrefix(got, "VALUE "+w.key) {
						t.Errorf("%s is not on %s: %q", w.key, w.addr, got)
					}
				}
			}
			if tp.tls.backendHandshakes.Load() == 0 {
				t.Error("no TLS handshake with the secure pool's backend")
			}
		})
	}
}

// TestTLSPerPoolReload: a server that a reload puts in a pool with its own
// TLS is dialled (and probed) with it: the pool's keys reach it.
func TestTLSPerPoolReload(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	servers, mcs := tlsBackends(t, pki, 2)
	plain := memcachedtest.Start(t)
	tp := startSecureAndPlain(t, pki, servers[0].Addr, plain.Addr, func(o *Options, b *BackendTLS) {
		o.PoolTLS = map[string]*BackendTLS{"secure": b}
	})
	s := tp.Settings()
	s.Pools[0].Backends = []Backend{{Addr: servers[1].Addr, Weight: 1}}
	if _, err := tp.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.WaitFor(t, "sec:x on the new server", func() bool {
		if memcachedtest.RoundTrip(t, c, "set sec:x 0 0 1\r\nx\r\n", "\r\n", 1) != "STORED\r\n" {
			return false
		}
		return strings.HasPrefix(memcachedtest.Send(t, mcs[1].Plain, "get sec:x\r\n", "END\r\n", 1), "VALUE sec:x")
	})
}

// startSecureAndPlain starts a proxy with two pools, "secure" on
// secureAddr and "plain" on plainAddr, routing keys that start with "sec:"
// to the first and the rest to the second; secure sets their TLS, given b,
// TLS with the proxy's client certificate from pki.
func startSecureAndPlain(t *testing.T, pki *tlstest.PKI, secureAddr, plainAddr string, secure func(o *Options, b *BackendTLS)) *tlsProxy {
	t.Helper()
	cert := pki.Leaf(t, "proxy")
	return startTLSProxy(t, pki, nil, false, func(o *Options) {
		o.Backends = nil
		o.Pools = []Pool{{Name: "secure", Backends: []Backend{{Addr: secureAddr, Weight: 1}}},
			{Name: "plain", Backends: []Backend{{Addr: plainAddr, Weight: 1}}}}
		o.Routes = []Route{{Prefix: "sec:", Pool: "secure"}, {Pool: "plain"}}
		secure(o, &BackendTLS{Certs: openStore(t, tlsfiles.Files{Cert: cert.Cert, Key: cert.Key, CA: pki.CAFile})})
	})
}
