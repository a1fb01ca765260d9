package proxy

import (
	"testing"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// TestLiveBackendsWithEveryBackendDead: with the default cap, two of three
// dead backends stay in the ring (capped). mcproxy_ring_members still says
// 2, but mcproxy_live_backends, stats' live_backends and /readyz agree that
// nothing serves. Against ring_members alone, "every backend is dead"
// looked like two live backends.
func TestLiveBackendsWithEveryBackendDead(t *testing.T) {
	tp := startProxy(t, 3, nil)
	if v := metric(t, tp, "mcproxy_live_backends", ""); v != 3 {
		t.Fatalf("mcproxy_live_backends at start: %v, want 3", v)
	}
	for _, b := range tp.backends {
		b.Kill()
	}
	// Which one is ejected depends on whose failure the checker reports
	// first: wait for the counts, not for particular backends.
	memcachedtest.WaitFor(t, "two capped backends and one ejected", func() bool {
		n := 0
		for _, b := range tp.pool0().all {
			if b.capped.Load() {
				n++
			}
		}
		return n == 2 && len(tp.pool0().members) == 2
	})
	if v := metric(t, tp, "mcproxy_ring_members", ""); v != 2 {
		t.Errorf("mcproxy_ring_members: %v, want 2 (the capped backends)", v)
	}
	if v := metric(t, tp, "mcproxy_live_backends", ""); v != 0 {
		t.Errorf("mcproxy_live_backends with every backend dead: %v, want 0", v)
	}
	if got := memcachedtest.Stats(t, tp.addr, "")["live_backends"]; got != "0" {
		t.Errorf("stats live_backends with every backend dead: %q, want 0", got)
	}
	if ok, why := tp.Ready(); ok || why != "no live backend" {
		t.Errorf("Ready with every backend dead: %v %q", ok, why)
	}
}

// TestBackendState: what "stats backends" says of each health status.
func TestBackendState(t *testing.T) {
	for _, tt := range []struct {
		st   health.Status
		want string
	}{
		{health.Status{State: health.Up}, "up"},
		{health.Status{State: health.Down, ConsecutiveFailures: 3}, "down"},
		{health.Status{State: health.Down, ConsecutiveFailures: 0}, "recovering"},
		{health.Status{State: health.Down, Joining: true}, "joining"},
		{health.Status{State: health.Down, Joining: true, ConsecutiveFailures: 5}, "joining"},
	} {
		if got := backendState(tt.st); got != tt.want {
			t.Errorf("backendState(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}
