package childproxy

import (
	"bytes"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

// TestProxy is an mcproxy a test started with StartT.
type TestProxy struct {
	*childproc.Process
	// Listen is the memcached-protocol address StartT waited for.
	Listen string
	out    *syncBuffer
}

// StartT starts bin with args for a test and waits until listen accepts,
// failing the test if it does not. The proxy's output is kept and logged if
// the test fails. At cleanup a proxy still running gets SIGTERM, and the
// test fails if it has not exited mcproxyproc.StopWait later (it is then killed).
func StartT(t testing.TB, bin, listen string, args ...string) *TestProxy {
	t.Helper()
	p := &TestProxy{Listen: listen, out: &syncBuffer{}}
	var err error
	if p.Process, err = childproc.Start(bin, args, p.out); err != nil {
		t.Fatalf("childproxy: %v", err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.Signal(syscall.SIGTERM)
			if !p.WaitExit(mcproxyproc.StopWait) {
				p.Kill()
				t.Errorf("mcproxy did not stop on SIGTERM within %v", mcproxyproc.StopWait)
			}
		}
		if t.Failed() {
			t.Logf("mcproxy output:\n%s", p.Output())
		}
	})
	if err := p.WaitAccepting(listen, mcproxyproc.StartWait); err != nil {
		t.Fatalf("childproxy: mcproxy not serving: %v\n%s", err, p.Output())
	}
	return p
}

// Output returns what the proxy has written to stdout and stderr so far.
func (p *TestProxy) Output() string { return p.out.String() }

// WaitOutput waits up to mcproxyproc.StartWait until the proxy's output holds text, and
// fails the test if it does not. It is for tests of what the proxy logs;
// tools read what it publishes instead (see internal/tools/backendwatch).
func (p *TestProxy) WaitOutput(t testing.TB, text string) {
	t.Helper()
	deadline := time.Now().Add(mcproxyproc.StartWait)
	for !strings.Contains(p.Output(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("mcproxy never wrote %q:\n%s", text, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitExitCode waits up to bound for the proxy to exit and returns its exit
// status; it fails the test if the proxy is still running then, or if a
// signal ended it.
func (p *TestProxy) WaitExitCode(t testing.TB, bound time.Duration) int {
	t.Helper()
	if !p.WaitExit(bound) {
		t.Fatalf("mcproxy still running after %v\n%s", bound, p.Output())
	}
	code := p.ExitCode()
	if code < 0 {
		t.Fatalf("mcproxy ended by a signal: %v\n%s", p.Err(), p.Output())
	}
	return code
}

// syncBuffer collects a child's output for the test to read while the
// child writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
