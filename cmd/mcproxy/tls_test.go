package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
)

// secretDir lays certificate files out as a Kubernetes secret volume
// does: the files are symlinks through "..data", itself a symlink to a
// timestamped directory, and an update swaps "..data" in one rename.
type secretDir struct {
	dir string
	n   int
}

// publish makes files the secret's content, swapping it in at once.
func (s *secretDir) publish(t *testing.T, files map[string][]byte) {
	t.Helper()
	s.n++
	version := fmt.Sprintf("..2026_12_07_%d", s.n)
	if err := os.Mkdir(filepath.Join(s.dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.dir, version, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestTLSCertificateRotates: mcproxy serving TLS with its certificate in a
// Kubernetes-style secret volume serves a new certificate to new clients
// within seconds of the secret's update, without a restart; a bad update
// is refused (counted in /metrics) and the good certificate stays; the
// expiry gauge follows the certificate in force.
func TestTLSCertificateRotates(t *testing.T) {
	pki := tlstest.NewPKI(t, "mcproxy test CA")
	backend := memcachedtest.Start(t)
	sec := &secretDir{dir: t.TempDir()}
	first, err := pki.CA.Sign("first", time.Time{}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sec.publish(t, map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM})

	listen, tlsListen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	cfg := configText(listen, admin, backend.Addr) + fmt.Sprintf("tls:\n  listen: %s\n  cert_file: %s\n  key_file: %s\n",
		tlsListen, filepath.Join(sec.dir, "tls.crt"), filepath.Join(sec.dir, "tls.key"))
	serveConfig(t, cfg, tlsListen)
	client := &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1"}
	served := func() string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", tlsListen, client)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := memcachedtest.RoundTrip(t, c, "set rot 0 0 1\r\nx\r\n", "\r\n", 1); got != "STORED\r\n" {
			t.Fatalf("set over TLS: %q", got)
		}
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q at start", got)
	}
	expiry := `mcproxy_tls_certificate_expiry_timestamp_seconds{section="tls"}`
	if got := scrape(t, admin)[expiry]; got != float64(first.NotAfter.Unix()) {
		t.Errorf("%s = %v, want %d", expiry, got, first.NotAfter.Unix())
	}

	second, err := pki.CA.Sign("second", time.Now().Add(48*time.Hour), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sec.publish(t, map[string][]byte{"tls.crt": second.CertPEM, "tls.key": second.KeyPEM})
	memcachedtest.WaitFor(t, "the rotated certificate served", func() bool { return served() == "second" })
	if got := scrape(t, admin)[expiry]; got != float64(second.NotAfter.Unix()) {
		t.Errorf("%s = %v after the rotation, want %d", expiry, got, second.NotAfter.Unix())
	}

	// A key that does not go with the certificate: refused, counted, and
	// the second certificate stays in force.
	sec.publish(t, map[string][]byte{"tls.crt": first.CertPEM, "tls.key": second.KeyPEM})
	failures := `mcproxy_tls_certificate_reload_failures_total{section="tls"}`
	memcachedtest.WaitFor(t, "the bad update refused", func() bool { return scrape(t, admin)[failures] >= 1 })
	if got := served(); got != "second" {
		t.Errorf("served %q after a refused update", got)
	}
}
