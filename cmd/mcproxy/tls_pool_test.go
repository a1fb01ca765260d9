package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
)

// TestPoolTLS: a config with a pool over TLS (pools.secure.tls, memcached
// -Z requiring the proxy's client certificate) beside a clear-text pool:
// each route's keys reach their pool's backend, and the pool's
// certificate has its expiry gauge under its own section.
func TestPoolTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	secure := tlstest.StartMemcached(t, pki.Leaf(t, "memcached", "127.0.0.1"), pki.CAFile)
	plain := memcachedtest.Start(t)
	cert := pki.Leaf(t, "proxy")
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	cfg := fmt.Sprintf("listen: %s\nadmin: %q\nhealth: {interval: 1s, timeout: 1s}\nbackend: {connect_timeout: 5s, timeout: 5s}\n"+
		"pools:\n  secure:\n    backends: [%s]\n    tls: {enabled: true, ca_file: %s, cert_file: %s, key_file: %s}\n"+
		"  plain:\n    backends: [%s]\nroutes:\n  - {prefix: 'sec:', pool: secure}\n  - {pool: plain}\n",
		listen, admin, secure.Addr, pki.CAFile, cert.Cert, cert.Key, plain.Addr)
	serveConfig(t, cfg, listen)
	c := memcachedtest.Dial(t, listen)
	for _, k := range []string{"sec:1", "pub:1"} {
		set := fmt.Sprintf("set %s 0 0 1\r\nx\r\n", k)
		memcachedtest.WaitFor(t, "set "+k, func() bool { return memcachedtest.RoundTrip(t, c, set, "\r\n", 1) == "STORED\r\n" })
	}
	for _, w := range []struct{ addr, key string }{{secure.Plain, "sec:1"}, {plain.Addr, "pub:1"}} {
		if got := memcachedtest.Send(t, w.addr, "get "+w.key+"\r\n", "END\r\n", 1); !strings.HasPrefix(got, "VALUE "+w.key) {
			t.Errorf("%s is not on %s: %q", w.key, w.addr, got)
		}
	}
	expiry := `mcproxy_tls_certificate_expiry_timestamp_seconds{section="pools.secure.tls"}`
	if got := scrape(t, admin)[expiry]; got == 0 {
		t.Errorf("no %s", expiry)
	}
}
