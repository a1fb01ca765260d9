// Package tlstest gives tests certificate authorities, certificates and
// memcached with TLS on (memcached -Z), all made in the test with
// crypto/x509 (internal/tools/tlscerts): no openssl.
package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/tools/tlscerts"
)

// PKI is a CA and the directory its files go to.
type PKI struct {
	Dir    string
	CA     *tlscerts.CA
	CAFile string
}

// NewPKI makes a CA named name, its certificate written to a directory of
// the test's.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	ca, err := tlscerts.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &PKI{Dir: dir, CA: ca, CAFile: filepath.Join(dir, "ca.crt")}
	if err := tlscerts.WriteFile(p.CAFile, ca.PEM); err != nil {
		t.Fatal(err)
	}
	return p
}

// Leaf makes a certificate named name for hosts (default 127.0.0.1),
// written as name.crt and name.key in the PKI's directory.
func (p *PKI) Leaf(t testing.TB, name string, hosts ...string) tlscerts.Paths {
	t.Helper()
	paths, _ := p.LeafCert(t, name, time.Time{}, hosts...)
	return paths
}

// LeafCert is Leaf that expires at notAfter (zero: tlscerts.Validity) and
// also returns the certificate.
func (p *PKI) LeafCert(t testing.TB, name string, notAfter time.Time, hosts ...string) (tlscerts.Paths, *x509.Certificate) {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	l, err := p.CA.Sign(name, notAfter, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := l.Write(p.Dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return paths, l.Cert
}

// Pool is a pool of the PKI's CA alone.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	return pool
}

// ClientConfig is a client config that trusts p's CA and presents cert
// (none when cert is the zero Paths).
func (p *PKI) ClientConfig(t testing.TB, cert tlscerts.Paths) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: p.Pool(), ServerName: "127.0.0.1"}
	if cert.Cert != "" {
		kp, err := tls.LoadX509KeyPair(cert.Cert, cert.Key)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c
}

// Memcached is memcached with TLS on its Addr, and a clear-text listener
// (memcached's notls:) on Plain for looking at it directly.
type Memcached struct {
	*memcachedtest.Server
	Plain string
}

// StartMemcached starts memcached -Z serving cert; with clientCA set it
// requires clients to present a certificate that CA signed. extra are more
// memcached arguments.
func StartMemcached(t testing.TB, cert tlscerts.Paths, clientCA string, extra ...string) *Memcached {
	t.Helper()
	port, err := memcachedtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	plain := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	opts := "ssl_chain_cert=" + cert.Cert + ",ssl_key=" + cert.Key
	if clientCA != "" {
		opts += ",ssl_ca_cert=" + clientCA + ",ssl_verify_mode=2"
	}
	args := append([]string{"-Z", "-o", opts, "-l", "notls:" + plain}, extra...)
	return &Memcached{Server: memcachedtest.Start(t, args...), Plain: plain}
}
