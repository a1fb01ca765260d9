package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// TestDeadBackendSemantics kills one backend with health checking off, so
// the ring keeps it: reads of its keys are misses, writes get SERVER_ERROR,
// the other backends are unaffected, and the connection stays in step.
func TestDeadBackendSemantics(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.Health.AlwaysUp = true })
	victim := tp.backends[0]
	c, dead, alive := storeDeadAndAlive(t, tp, victim.Addr, tp.backends[1].Addr)

	victim.Kill()

	// The first command may find the pooled connection broken; either way
	// the answers are a miss and a SERVER_ERROR, never a hang or a desync.
	for i := 0; i < 3; i++ {
		got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("get %s %s\r\n", dead, alive), "END\r\n", 1)
		if got != fmt.Sprintf("VALUE %s 0 1\r\ny\r\nEND\r\n", alive) {
			t.Fatalf("multi-get with a dead backend: %q", got)
		}
		got = memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nz\r\n", dead), "\r\n", 1)
		if !strings.HasPrefix(got, "SERVER_ERROR backend ") {
			t.Fatalf("set on a dead backend: %q", got)
		}
		got = memcachedtest.RoundTrip(t, c, fmt.Sprintf("incr %s 1\r\ntouch %s 0\r\n", dead, alive), "TOUCHED\r\n", 1)
		if !strings.HasPrefix(got, "SERVER_ERROR backend ") || !strings.HasSuffix(got, "\r\nTOUCHED\r\n") {
			t.Fatalf("incr on dead, touch on live: %q", got)
		}
	}
	if got := memcachedtest.RoundTrip(t, c, "flush_all\r\n", "\r\n", 1); got != "SERVER_ERROR flush_all failed on 1 of 3 backends\r\n" {
		t.Fatalf("flush_all with a dead backend: %q", got)
	}
}

// TestFrozenBackendBoundedByTimeout freezes one backend (SIGSTOP: it keeps
// its sockets but answers nothing, like a hung host). Requests to it end
// with a miss or SERVER_ERROR instead of hanging, and requests to healthy
// backends on the same client connection are answered.
func TestFrozenBackendBoundedByTimeout(t *testing.T) {
	tp := startProxy(t, 2, func(o *Options) {
		o.Health.AlwaysUp = true
		o.Timeout = 200 * time.Millisecond
	})
	victim := tp.backends[0]
	frozen := keyOn(t, tp, victim.Addr, "frozen")
	fine := keyOn(t, tp, tp.backends[1].Addr, "fine")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nx\r\nset %s 0 0 1\r\ny\r\n", frozen, fine), "STORED\r\nSTORED\r\n", 1)
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })

	got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("get %s\r\n", frozen), "END\r\n", 1)
	if got != "END\r\n" {
		t.Fatalf("get on a frozen backend: %q", got)
	}
	// After a timeout the connection is treated as hung: the set fails at
	// once while it reconnects ("unavailable"), or times out if it was
	// sent on a fresh connection the frozen host accepted.
	got = memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nz\r\nget %s\r\n", frozen, fine), "END\r\n", 1)
	healthy := fmt.Sprintf("VALUE %s 0 1\r\ny\r\nEND\r\n", fine)
	if got != "SERVER_ERROR backend unavailable\r\n"+healthy && got != "SERVER_ERROR backend timeout\r\n"+healthy {
		t.Fatalf("set on frozen then get on healthy: %q", got)
	}
	stats := parseStats(memcachedtest.RoundTrip(t, c, "stats\r\n", "END\r\n", 1))
	if stats["backend_timeouts"] == "0" {
		t.Fatalf("timeouts not counted: %v", stats["backend_timeouts"])
	}

	// Thawed, the backend serves again once the proxy reconnects.
	if err := victim.Thaw(); err != nil {
		t.Fatal(err)
	}
	// The set that timed out may still be applied when the backend wakes
	// (it was in its socket buffer), as with any client that gives up on a
	// reply; so check with a fresh write.
	memcachedtest.WaitFor(t, "the backend to be used again after the thaw", func() bool {
		got = memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nw\r\nget %s\r\n", frozen, frozen), "END\r\n", 1)
		return got == fmt.Sprintf("STORED\r\nVALUE %s 0 1\r\nw\r\nEND\r\n", frozen)
	})
}

// TestNoBackendsFailsFast: with every backend ejected (max_ejected 100%),
// commands fail at once with a clear SERVER_ERROR.
func TestNoBackendsFailsFast(t *testing.T) {
	tp := startProxy(t, 2, func(o *Options) {
		o.MaxEjected = MaxEjectedPercent(100)
		o.Health.Interval = 50 * time.Millisecond
		o.Health.Timeout = 50 * time.Millisecond
	})
	for _, s := range tp.backends {
		s.Kill()
	}
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.WaitFor(t, "every backend to be ejected", func() bool { return tp.pool0().place == nil })
	for _, cmd := range []string{"get a\r\n", "set a 0 0 1\r\nx\r\n", "delete a\r\n", "incr a 1\r\n", "flush_all\r\n"} {
		if got := memcachedtest.RoundTrip(t, c, cmd, "\r\n", 1); got != "SERVER_ERROR no backends available\r\n" {
			t.Errorf("%q with no backends: %q", cmd, got)
		}
	}
	if got := memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1); got != "VERSION 1.6.0-mcproxy-test\r\n" {
		t.Errorf("version with no backends: %q", got)
	}
}
