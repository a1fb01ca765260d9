package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// prefill stores n keys through the proxy and returns them.
func prefill(t *testing.T, addr string, n int) []string {
	t.Helper()
	mc := newClient(t, addr)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("pre:%d", i)
		if err := mc.Set(&memcache.Item{Key: keys[i], Value: []byte("v")}); err != nil {
			t.Fatalf("prefill %s: %v", keys[i], err)
		}
	}
	return keys
}

// hitShare gets every key once and returns the share that hit.
func hitShare(t *testing.T, addr string, keys []string) float64 {
	t.Helper()
	mc := newClient(t, addr)
	hits := 0
	for i := 0; i < len(keys); i += 100 {
		got, err := mc.GetMulti(keys[i:min(i+100, len(keys))])
		if err != nil {
			t.Fatalf("get multi: %v", err)
		}
		hits += len(got)
	}
	return float64(hits) / float64(len(keys))
}

// TestKilledBackendEjectedUnderLoad: SIGKILL one backend of three under a
// steady load. It leaves the ring, errors stop once it has, about two
// thirds of the prefilled keys still hit; restarted, it is re-added and
// takes its keys back.
func TestKilledBackendEjectedUnderLoad(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.Ring.Partitions = 7919; o.Ring.ReplicationFactor = 160 })
	keys := prefill(t, tp.addr, 3000)
	victim := tp.backends[0]
	mine := 0
	for _, k := range keys {
		if tp.pool0().members[tp.pool0().place.Locate([]byte(k))].addr == victim.Addr {
			mine++
		}
	}
	load := memcachedtest.StartLoad(t, tp.addr, 8, "load:", 3000)
	load.WaitOps(t, "before the kill", 500)

	victim.Kill()
	waitInRing(t, tp, victim.Addr, false)
	// Requests that were in flight when the ring changed may still fail;
	// none sent after it may.
	ejected := time.Now()
	load.WaitOps(t, "after the ejection", 2000)
	if n := load.ErrorsSentAfter(ejected); n > 0 {
		t.Errorf("%d requests sent after the dead backend left the ring failed", n)
	}
	share := hitShare(t, tp.addr, keys)
	want := 1 - float64(mine)/float64(len(keys))
	t.Logf("victim owned %d of %d keys; %.3f still hit (want about %.3f)", mine, len(keys), share, want)
	if share < want-0.1 || share > want+0.1 {
		t.Errorf("%.3f of the keys hit after the ejection, want about %.3f", share, want)
	}

	victim.Restart(t)
	waitInRing(t, tp, victim.Addr, true)
	load.WaitOps(t, "after the re-add", 500)
	// Its keys route to it again: a set through the proxy lands on it.
	k := keyOn(t, tp, victim.Addr, "back")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 1\r\nz\r\n", "STORED\r\n", 1)
	if got := memcachedtest.RoundTrip(t, memcachedtest.Dial(t, victim.Addr), "get "+k+"\r\n", "END\r\n", 1); got != "VALUE "+k+" 0 1\r\nz\r\nEND\r\n" {
		t.Fatalf("key of the re-added backend not stored on it: %q", got)
	}
	be := memcachedtest.RoundTrip(t, c, "stats backends\r\n", "END\r\n", 1)
	for _, want := range []string{"backend:" + victim.Addr + ":ejections 1\r\n", "backend:" + victim.Addr + ":readds 1\r\n",
		"backend:" + victim.Addr + ":state up\r\n"} {
		if !strings.Contains(be, want) {
			t.Errorf("stats backends lacks %q:\n%s", want, be)
		}
	}
}

// TestFrozenBackendEjectedUnderLoad: SIGSTOP one backend (a hung host)
// under load. No request waits much past the backend timeout, the backend
// is ejected, and after SIGCONT it is re-added.
func TestFrozenBackendEjectedUnderLoad(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tp := startProxy(t, 3, func(o *Options) { o.Timeout = timeout })
	victim := tp.backends[1]
	load := memcachedtest.StartLoad(t, tp.addr, 8, "load:", 3000)
	load.WaitOps(t, "before the freeze", 500)

	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })
	waitInRing(t, tp, victim.Addr, false)
	// Requests sent before the ejection fail within a timeout; none sent
	// after it may fail. How long the slowest waited is a timing figure,
	// measured by cmd/mcfailover, not asserted here.
	ejected := time.Now()
	load.WaitOps(t, "after the ejection", 2000)
	if n := load.ErrorsSentAfter(ejected); n > 0 {
		t.Errorf("%d requests sent after the frozen backend left the ring failed", n)
	}
	t.Logf("slowest request: %v (backend timeout %v)", load.Slowest(), timeout)
	if err := victim.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitInRing(t, tp, victim.Addr, true)
	load.WaitOps(t, "after the re-add", 500)
}

// TestAutoEjectOff: with auto_eject false a dead backend stays in the
// ring; its keys fail fast (misses for reads, SERVER_ERROR for writes)
// instead of moving, and the other keys are unaffected.
func TestAutoEjectOff(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.AutoEject = false })
	victim := tp.backends[2]
	c, dead, alive := storeDeadAndAlive(t, tp, victim.Addr, tp.backends[0].Addr)
	victim.Kill()
	memcachedtest.WaitFor(t, "the dead backend to be marked down", func() bool { return !tp.health.IsUp(victim.Addr) })
	if n := len(tp.pool0().members); n != 3 {
		t.Fatalf("auto_eject false, but the ring has %d members", n)
	}
	start := time.Now()
	got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("get %s %s\r\nset %s 0 0 1\r\nz\r\n", dead, alive, dead), "\r\n", 1)
	for !strings.HasSuffix(got, "SERVER_ERROR backend unavailable\r\n") && time.Since(start) < exchangeBound {
		got += memcachedtest.RoundTrip(t, c, "", "\r\n", 1)
	}
	want := fmt.Sprintf("VALUE %s 0 1\r\ny\r\nEND\r\nSERVER_ERROR backend unavailable\r\n", alive)
	if got != want {
		t.Fatalf("with auto_eject false:\n got %q\nwant %q", got, want)
	}
}

// TestNoStaleValueAfterReadd: a frozen backend misses the writes made to
// its keys while it was out of the ring; when it comes back it is flushed
// first, so it never serves its old value again. Without FlushOnReadd it
// does, which is what turning the option off trades away.
func TestNoStaleValueAfterReadd(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			tp := startProxy(t, 3, func(o *Options) { o.FlushOnReadd = !keep })
			victim := tp.backends[0]
			k := keyOn(t, tp, victim.Addr, "stale")
			c := memcachedtest.Dial(t, tp.addr)
			memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 3\r\nold\r\n", "STORED\r\n", 1)
			if err := victim.Freeze(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = victim.Thaw() })
			waitInRing(t, tp, victim.Addr, false)
			// The key now lives on another backend; the client updates it.
			memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 3\r\nnew\r\n", "STORED\r\n", 1)
			if err := victim.Thaw(); err != nil {
				t.Fatal(err)
			}
			waitInRing(t, tp, victim.Addr, true)
			got := memcachedtest.RoundTrip(t, c, "get "+k+"\r\n", "END\r\n", 1)
			stale := "VALUE " + k + " 0 3\r\nold\r\nEND\r\n"
			if !keep && got != "END\r\n" {
				t.Fatalf("after re-adding a flushed backend: %q, want a miss", got)
			}
			if keep && got != stale {
				t.Fatalf("without FlushOnReadd: %q, want the old value %q", got, stale)
			}
		})
	}
}

// TestAutoEjectOffNamedFrozen: with auto_eject false, the keys of a backend
// the checker holds down fail fast however the backend is named. The
// checker knows backends by name: a frozen backend named apart from its
// address must be seen as down, so that its keys are refused at once
// (counted as errors_down) rather than sent to wait out the timeout.
func TestAutoEjectOffNamedFrozen(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) {
		o.AutoEject = false
		o.Timeout = 30 * time.Second // a request sent to the frozen backend would hang
		for i := range o.Backends {
			o.Backends[i].Name = fmt.Sprintf("cache-%d", i)
		}
	})
	victim := tp.backends[2]
	dead := keyOn(t, tp, victim.Addr, "dead")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nx\r\n", dead), "STORED\r\n", 1)
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.Thaw() }()
	memcachedtest.WaitFor(t, "the frozen backend to be marked down", func() bool { return !tp.health.IsUp("cache-2") })
	if got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nz\r\n", dead), "\r\n", 1); got != "SERVER_ERROR backend unavailable\r\n" {
		t.Fatalf("set on a down backend: %q", got)
	}
	st := backendStats(t, c, "cache-2")
	if st["errors_down"] != "1" || st["errors_timeout"] != "0" {
		t.Fatalf("errors_down %s, errors_timeout %s: the set was not refused as down", st["errors_down"], st["errors_timeout"])
	}
}
