package proxy

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// watchOnly enlists l as serve does but starts no acceptor goroutine, so
// that only the first event loop can accept on it (accept_loop.go). The
// returned function undoes it, as the end of serve would; the test's
// cleanup does too if the test ends first.
func watchOnly(t *testing.T, p *Proxy, l net.Listener) (*acceptor, func()) {
	t.Helper()
	a, err := newAcceptor(p, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.enlist(a, nil); err != nil {
		t.Fatal(err)
	}
	if a.loop == nil {
		t.Fatal("a clear-text listener is not watched by the first loop")
	}
	var once sync.Once
	end := func() { once.Do(func() { a.close(); p.acceptors.Done() }) }
	t.Cleanup(end) // before the proxy's own cleanup, which waits for it
	return a, end
}

// TestLoopAcceptsWhileAcceptorCannot: the first event loop accepts clients
// on its own, as it must when the acceptor goroutine does not get a CPU;
// when accepting is paused at the descriptor limits it leaves the clients
// waiting, and once the acceptor has caught up (rearm) it accepts again.
func TestLoopAcceptsWhileAcceptorCannot(t *testing.T) {
	p := newServingProxy(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, end := watchOnly(t, p, l)
	addr := l.Addr().String()

	for i := 0; i < 3; i++ {
		if got := memcachedtest.Send(t, addr, "set k 0 0 1\r\nv\r\nget k\r\n", "END\r\n", 1); got != "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n" {
			t.Fatalf("client %d, accepted by the loop: %q", i, got)
		}
	}

	// Paused: the loop stops watching when a client arrives, and leaves it
	// in the backlog.
	p.gate.disable("test", p)
	c, err := net.DialTimeout("tcp", addr, memcachedtest.WaitBound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	memcachedtest.WaitFor(t, "the loop to stop watching while accepting is paused", func() bool {
		return !a.loop.armed.Load()
	})
	var before uint64
	p.loops[0].call(func() { before = p.stats.totalConnections.Load() })

	// The acceptor has caught up: accepting is on, the loop watches again
	// and takes the client that waited.
	p.gate.enable()
	a.rearm()
	if got := memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1); len(got) < 8 || got[:8] != "VERSION " {
		t.Fatalf("the client that waited through the pause: %q", got)
	}
	if after := p.stats.totalConnections.Load(); after != before+1 {
		t.Errorf("connections accepted after the pause: %d, want %d", after, before+1)
	}

	end()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := p.fds.loopListeners.Load(); n != 0 {
		t.Errorf("%d loop duplicates of listening sockets left open", n)
	}
}
