package proxy

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// newServingProxy starts a proxy in front of one real memcached, serving on
// a TCP listener, for a test to serve on another listener too.
func newServingProxy(t *testing.T) *Proxy {
	t.Helper()
	tp := startProxy(t, 1, nil)
	// Serve has begun: shutting down at the end of the test does not
	// race the start of the helper's Serve.
	memcachedtest.Send(t, tp.addr, "version\r\n", "\r\n", 1)
	return tp.Proxy
}

// serveOn runs Serve(l) and returns its result when it ends.
func serveOn(p *Proxy, l net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	return done
}

// TestServeUnixListener serves clients on a Unix socket: the acceptor
// takes any socket listener.
func TestServeUnixListener(t *testing.T) {
	p := newServingProxy(t)
	path := filepath.Join(t.TempDir(), "mcproxy.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := serveOn(p, l)
	c, err := net.DialTimeout("unix", path, memcachedtest.WaitBound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := memcachedtest.RoundTrip(t, c, "set u 0 0 1\r\nx\r\nget u\r\n", "END\r\n", 1); got != "STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("over the Unix socket: %q", got)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// wrappedListener hides its listener's socket, as a listener of a library
// that wraps another does.
type wrappedListener struct{ net.Listener }

// TestServeRefusesListenerWithoutSocket: a listener the proxy cannot take
// the socket of is refused at once, with a reason.
func TestServeRefusesListenerWithoutSocket(t *testing.T) {
	p := newServingProxy(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = p.Serve(wrappedListener{l})
	if err == nil || !strings.Contains(err.Error(), "has no socket to accept on") {
		t.Fatalf("Serve(wrapped listener) = %v", err)
	}
}

// TestServeEndsWhenCallerClosesListener: Serve returns, with an error, when
// its caller closes the listener rather than shutting the proxy down, and
// the listening socket is closed then (a connection is refused).
func TestServeEndsWhenCallerClosesListener(t *testing.T) {
	p := newServingProxy(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := serveOn(p, l)
	memcachedtest.Send(t, l.Addr().String(), "version\r\n", "\r\n", 1) // serving
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve after its listener closed: %v", err)
		}
	case <-time.After(memcachedtest.WaitBound):
		t.Fatal("Serve still running after its listener closed")
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the listening socket is still open")
	}
}
