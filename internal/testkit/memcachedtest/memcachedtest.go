// Package memcachedtest is the tests' side of real memcached: Start runs
// one (internal/tools/memcachedproc) for a test and ends it at cleanup,
// and the package holds what tests do with a memcached or an mcproxy on a
// loopback address: raw exchanges (Dial, RoundTrip, Send), stats, a steady
// client load, and the one wait for observable state (WaitFor). Nothing
// here mocks memcached. The tools use memcachedproc and never link this
// package, which imports testing.
package memcachedtest

import (
	"testing"

	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"github.com/mcproxy/mcproxy/internal/tools/memcachedproc"
)

// Server is a memcached a test started: a memcachedproc.Server with the
// test's way of restarting it.
type Server struct{ *memcachedproc.Server }

// Start starts memcached on a free loopback port with the given extra
// arguments (for example "-m", "64" or "-I", "2m"). It fails the test if
// memcached cannot be started, and kills it at cleanup.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	s, err := memcachedproc.Launch(extraArgs...)
	if err != nil {
		t.Fatalf("memcachedtest: %v", err)
	}
	t.Cleanup(s.Kill)
	return &Server{s}
}

// Restart kills memcached and starts it again, empty, on the same port
// (memcachedproc.Server.Relaunch); it fails the test on error.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Relaunch(); err != nil {
		t.Fatalf("memcachedtest: %v", err)
	}
}

// Binary returns the path of the memcached binary, or an error saying how
// to install it; tests that need memcached skip on the error.
func Binary() (string, error) { return memcachedproc.Binary() }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) { return childproc.FreePort() }

// FreeAddr returns "127.0.0.1:port" for a port that was free a moment ago,
// failing the test if there is none.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := childproc.FreeAddr()
	if err != nil {
		t.Fatalf("memcachedtest: %v", err)
	}
	return addr
}
