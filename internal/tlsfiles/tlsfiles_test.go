package tlsfiles_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tlsfiles"
	"github.com/mcproxy/mcproxy/internal/tools/tlscerts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCA(t *testing.T) *tlscerts.CA {
	t.Helper()
	ca, err := tlscerts.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func leaf(t *testing.T, ca *tlscerts.CA, name string, notAfter time.Time) *tlscerts.Leaf {
	t.Helper()
	l, err := ca.Sign(name, notAfter, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := tlscerts.WriteFile(path, data); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesBadFiles: each kind of bad file is refused with an error
// naming the file.
func TestOpenRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	good := leaf(t, ca, "good", time.Time{})
	other := leaf(t, ca, "other", time.Time{})
	expired := leaf(t, ca, "expired", time.Now().Add(-time.Minute))
	f := tlsfiles.Files{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem"), CA: filepath.Join(dir, "ca.pem")}
	write(t, f.CA, ca.PEM)
	for _, tc := range []struct {
		name      string
		cert, key []byte
		ca        []byte
		want      string
	}{
		{"mismatched key", good.CertPEM, other.KeyPEM, ca.PEM, "does not match"},
		{"expired", expired.CertPEM, expired.KeyPEM, ca.PEM, "expired"},
		{"not PEM", []byte("hello"), good.KeyPEM, ca.PEM, "c.pem"},
		{"empty CA", good.CertPEM, good.KeyPEM, []byte("no certificate here\n"), "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(t, f.Cert, tc.cert)
			write(t, f.Key, tc.key)
			write(t, f.CA, tc.ca)
			if _, err := tlsfiles.Open(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := tlsfiles.Open(tlsfiles.Files{Cert: f.Cert}); err == nil {
		t.Error("a certificate without its key was accepted")
	}
	if _, err := tlsfiles.Open(tlsfiles.Files{CA: filepath.Join(dir, "missing.pem")}); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("a missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// TestReload: a reload swaps in good new files, does nothing when they did
// not change, and keeps the files in force when the new ones are bad.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	a, b := leaf(t, ca, "a", time.Time{}), leaf(t, ca, "b", time.Now().Add(48*time.Hour))
	f := tlsfiles.Files{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem")}
	write(t, f.Cert, a.CertPEM)
	write(t, f.Key, a.KeyPEM)
	s, err := tlsfiles.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Current()
	if changed, err := s.Reload(); changed || err != nil || s.Current() != first {
		t.Errorf("reload of unchanged files: %v %v", changed, err)
	}
	write(t, f.Cert, b.CertPEM)
	write(t, f.Key, b.KeyPEM)
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("reload of new files: %v %v", changed, err)
	}
	if got := s.Current(); got.Cert.Leaf.Subject.CommonName != "b" || !got.NotAfter.Equal(b.NotAfter) {
		t.Errorf("in force after the reload: %s until %v", got.Cert.Leaf.Subject.CommonName, got.NotAfter)
	}
	write(t, f.Key, a.KeyPEM) // half an update: b's certificate, a's key
	if _, err := s.Reload(); err == nil {
		t.Fatal("a mismatched pair was accepted")
	}
	if got := s.Current(); got.Cert.Leaf.Subject.CommonName != "b" || s.Failures() != 1 {
		t.Errorf("after a refused reload: %s in force, %d failures", got.Cert.Leaf.Subject.CommonName, s.Failures())
	}
}
