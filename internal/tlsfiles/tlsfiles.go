// Package tlsfiles loads a TLS certificate, its key and a CA bundle from
// PEM files and reloads them when they change, keeping the files in force
// when a new reading is bad: a certificate that does not match its key,
// that has expired, or a CA file with no certificate in it is refused with
// an error, and handshakes go on using the last good files.
//
// A Store is safe for use by any goroutine: handshakes read the current
// files (Current) without a lock, and Reload swaps them atomically, so
// that new handshakes use the new files while connections already open
// keep theirs. What calls Reload (a file watch, a signal) is the caller's.
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files of one TLS identity. Cert and Key go together
// (both or neither); CA is a bundle of trusted certificates, or empty.
type Files struct {
	Cert string
	Key  string
	CA   string
}

// Loaded is one good reading of the files. It is never changed once made.
type Loaded struct {
	// Cert is the certificate chain and key; nil without Files.Cert.
	Cert *tls.Certificate
	// CAs is the trusted bundle; nil without Files.CA.
	CAs *x509.CertPool
	// NotAfter is when Cert's leaf expires; zero without a certificate.
	NotAfter time.Time
	// LoadedAt is when the files were read.
	LoadedAt time.Time

	raw [3][]byte // the files' bytes, to skip a reload that changes nothing
}

// Store holds the current reading of a set of files.
type Store struct {
	files    Files
	cur      atomic.Pointer[Loaded]
	failures atomic.Uint64
	mu       sync.Mutex // serializes Reload
}

// Open reads the files once; it fails when they are missing or bad.
func Open(f Files) (*Store, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tlsfiles: a certificate file needs its key file and the other way round")
	}
	s := &Store{files: f}
	l, err := read(f, time.Now())
	if err != nil {
		return nil, err
	}
	s.cur.Store(l)
	return s, nil
}

// Files returns the file names the store reads.
func (s *Store) Files() Files { return s.files }

// Current returns the files in force.
func (s *Store) Current() *Loaded { return s.cur.Load() }

// Failures counts the reloads refused since Open.
func (s *Store) Failures() uint64 { return s.failures.Load() }

// Reload reads the files again. When they are good and differ from the
// files in force, they replace them and changed is true; when they are
// bad, the files in force stay and the error says why.
func (s *Store) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := readAll(s.files)
	if err == nil && sameBytes(raw, s.cur.Load().raw) {
		return false, nil
	}
	l, err := read(s.files, time.Now())
	if err != nil {
		s.failures.Add(1)
		return false, err
	}
	s.cur.Store(l)
	return true, nil
}

// read reads and checks the files.
func read(f Files, now time.Time) (*Loaded, error) {
	raw, err := readAll(f)
	if err != nil {
		return nil, err
	}
	l := &Loaded{LoadedAt: now, raw: raw}
	if f.Cert != "" {
		c, err := tls.X509KeyPair(raw[0], raw[1])
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: certificate %s with key %s: %w", f.Cert, f.Key, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: certificate %s: %w", f.Cert, err)
		}
		if now.After(leaf.NotAfter) {
			return nil, fmt.Errorf("tlsfiles: certificate %s expired at %s", f.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		c.Leaf = leaf
		l.Cert, l.NotAfter = &c, leaf.NotAfter
	}
	if f.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return nil, fmt.Errorf("tlsfiles: CA file %s holds no PEM certificate", f.CA)
		}
		l.CAs = pool
	}
	return l, nil
}

// readAll reads the files' bytes, [cert, key, CA], nil for a file not
// named. Each is at most maxFile bytes.
func readAll(f Files) ([3][]byte, error) {
	var raw [3][]byte
	for i, name := range []string{f.Cert, f.Key, f.CA} {
		if name == "" {
			continue
		}
		b, err := readBounded(name)
		if err != nil {
			return raw, err
		}
		raw[i] = b
	}
	return raw, nil
}

// maxFile bounds a PEM file: a long chain or a CA bundle (the Mozilla
// bundle is about 220 KB) fits many times over.
const maxFile = 4 << 20

func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: read %s: %w", name, err)
	}
	if n > maxFile {
		return nil, fmt.Errorf("tlsfiles: %s is over %d bytes", name, maxFile)
	}
	return buf.Bytes(), nil
}

func sameBytes(a, b [3][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
