package clientsuite

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
	"github.com/mcproxy/mcproxy/internal/tlsfiles"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// TestPythonTLSClientSeesMemcached: pymemcache with a tls_context that
// presents a client certificate sees mcproxy's TLS listener (client
// certificates required) in front of three memcached -Z (the proxy
// presenting its own) as it sees one memcached -Z.
func TestPythonTLSClientSeesMemcached(t *testing.T) {
	pki := tlstest.NewPKI(t, "clientsuite CA")
	client := pki.Leaf(t, "client")
	direct := tlstest.StartMemcached(t, pki.Leaf(t, "direct"), pki.CAFile)
	proxyAddr := startTLSProxy(t, pki)
	want := runTLSScript(t, pki, client.Cert, client.Key, direct.Addr)
	got := runTLSScript(t, pki, client.Cert, client.Key, proxyAddr)
	if got != want {
		t.Errorf("pymemcache over TLS sees a difference\nmemcached -Z:\n%s\nmcproxy:\n%s", want, got)
	}
}

// startTLSProxy runs mcproxy in-process with TLS on both sides, in front of
// three memcached -Z, and returns its TLS listener's address.
func startTLSProxy(t *testing.T, pki *tlstest.PKI) string {
	t.Helper()
	cert := pki.Leaf(t, "proxy")
	open := func(f tlsfiles.Files) *tlsfiles.Store {
		s, err := tlsfiles.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	opts := proxy.Options{Ring: ring.Config{Partitions: 7919, ReplicationFactor: 20, Load: 1.25},
		AutoEject: true, FlushOnReadd: true, Logger: zap.NewNop(),
		BackendTLS: &proxy.BackendTLS{Certs: open(tlsfiles.Files{Cert: cert.Cert, Key: cert.Key, CA: pki.CAFile})}}
	for range 3 {
		m := tlstest.StartMemcached(t, pki.Leaf(t, "backend"), pki.CAFile)
		opts.Backends = append(opts.Backends, proxy.Backend{Addr: m.Addr, Weight: 1})
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- p.ServeTLS(l, proxy.TLSServer{Certs: open(tlsfiles.Files{Cert: cert.Cert, Key: cert.Key, CA: pki.CAFile})})
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), memcachedtest.WaitBound)
		defer cancel()
		_ = p.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("serve TLS: %v", err)
		}
	})
	return l.Addr().String()
}

func runTLSScript(t *testing.T, pki *tlstest.PKI, cert, key, addr string) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := exec.LookPath(python); err != nil {
		t.Fatalf("%s not installed (apt-get install python3-pymemcache): %v", python, err)
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "clients_tls.py", pki.CAFile, cert, key, host, port)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pymemcache over TLS against %s: %v\n%s", addr, err, stderr.String())
	}
	return string(out)
}
