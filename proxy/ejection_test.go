package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

func TestEjectionCapLimit(t *testing.T) {
	for _, tt := range []struct {
		cap        EjectionCap
		pool, want int
		text       string
	}{
		{EjectionCap{}, 3, 1, "50%"}, {EjectionCap{}, 1, 0, "50%"}, {EjectionCap{}, 4, 2, "50%"},
		{MaxEjectedPercent(50), 5, 2, "50%"}, {MaxEjectedPercent(100), 3, 3, "100%"}, {MaxEjectedPercent(0), 9, 0, "0%"},
		{MaxEjectedPercent(67), 3, 2, "67%"}, {MaxEjectedBackends(1), 3, 1, "1"}, {MaxEjectedBackends(5), 3, 3, "5"},
		{MaxEjectedBackends(0), 3, 0, "0"},
	} {
		if got := tt.cap.Limit(tt.pool); got != tt.want || tt.cap.String() != tt.text {
			t.Errorf("%s of %d: %d (%s), want %d (%s)", tt.cap, tt.pool, got, tt.cap, tt.want, tt.text)
		}
	}
}

// TestEjectionCap: three backends, the cap allows one ejection. Kill two:
// the first is ejected, the second stays in the ring and its keys fail
// fast (gets miss, sets SERVER_ERROR) instead of moving to the survivor.
// When the first comes back, the second is ejected in its place. Against
// the code before the cap, the second is ejected too and the survivor
// takes its keys.
func TestEjectionCap(t *testing.T) {
	for _, tt := range []struct {
		name string
		cap  EjectionCap
	}{{"count 1", MaxEjectedBackends(1)}, {"50%", MaxEjectedPercent(50)}, {"default", EjectionCap{}}} {
		t.Run(tt.name, func(t *testing.T) {
			tp := startProxy(t, 3, func(o *Options) { o.MaxEjected = tt.cap })
			first, second, survivor := tp.backends[0], tp.backends[1], tp.backends[2]
			k2 := keyOn(t, tp, second.Addr, "second")
			k3 := keyOn(t, tp, survivor.Addr, "survivor")
			c := memcachedtest.Dial(t, tp.addr)
			memcachedtest.RoundTrip(t, c, "set "+k2+" 0 0 2\r\nv2\r\n", "STORED\r\n", 1)

			first.Kill()
			waitInRing(t, tp, first.Addr, false)
			second.Kill()
			waitCapped(t, tp, second.Addr, true)
			waitInRing(t, tp, second.Addr, true)
			if n := len(tp.pool0().members); n != 2 {
				t.Fatalf("%d ring members, want 2 (the survivor and the capped backend)", n)
			}
			if tp.health.IsUp(second.Addr) {
				t.Fatal("the capped backend is up")
			}
			// Its keys fail fast, and stay on it; the survivor's keys work.
			if got := memcachedtest.RoundTrip(t, c, "get "+k2+"\r\n", "END\r\n", 1); got != "END\r\n" {
				t.Fatalf("get of a capped backend's key: %q, want a miss", got)
			}
			sets := memcachedtest.Stat(t, survivor.Addr, "cmd_set")
			if got := memcachedtest.RoundTrip(t, c, "set "+k2+" 0 0 1\r\nx\r\n", "\r\n", 1); got != "SERVER_ERROR backend unavailable\r\n" {
				t.Fatalf("set of a capped backend's key: %q", got)
			}
			if n := memcachedtest.Stat(t, survivor.Addr, "cmd_set"); n != sets {
				t.Fatalf("the survivor received %d sets meant for the capped backend", n-sets)
			}
			if got := memcachedtest.RoundTrip(t, memcachedtest.Dial(t, survivor.Addr), "get "+k2+"\r\n", "END\r\n", 1); got != "END\r\n" {
				t.Fatalf("the capped backend's key is on the survivor: %q", got)
			}
			memcachedtest.RoundTrip(t, c, "set "+k3+" 0 0 1\r\ny\r\n", "STORED\r\n", 1)

			be := memcachedtest.RoundTrip(t, c, "stats backends\r\n", "END\r\n", 1)
			for _, want := range []string{"backend:" + second.Addr + ":ejection_capped 1\r\n",
				"backend:" + second.Addr + ":ejections_capped 1\r\n", "backend:" + second.Addr + ":in_ring true\r\n",
				"backend:" + first.Addr + ":ejection_capped 0\r\n", "backend:" + first.Addr + ":in_ring false\r\n",
				"backend:" + second.Addr + ":addr " + second.Addr + "\r\n"} {
				if !strings.Contains(be, want) {
					t.Errorf("stats backends lacks %q:\n%s", want, be)
				}
			}
			st := memcachedtest.Stats(t, tp.addr, "settings")
			if st["max_ejected"] != tt.cap.String() || st["max_ejected_backends"] != "1" {
				t.Errorf("stats settings: max_ejected %q max_ejected_backends %q", st["max_ejected"], st["max_ejected_backends"])
			}
			if v := metric(t, tp, "mcproxy_backend_ejection_capped", second.Addr); v != 1 {
				t.Errorf("mcproxy_backend_ejection_capped of the capped backend: %v", v)
			}
			if v := metric(t, tp, "mcproxy_backend_ejection_capped", first.Addr); v != 0 {
				t.Errorf("mcproxy_backend_ejection_capped of the ejected backend: %v", v)
			}
			if v := metric(t, tp, "mcproxy_backend_ejections_capped_total", second.Addr); v != 1 {
				t.Errorf("mcproxy_backend_ejections_capped_total: %v", v)
			}

			// The first comes back: the second is ejected in its place.
			first.Restart(t)
			waitInRing(t, tp, first.Addr, true)
			waitInRing(t, tp, second.Addr, false)
			waitCapped(t, tp, second.Addr, false)
			if v := metric(t, tp, "mcproxy_backend_ejection_capped", second.Addr); v != 0 {
				t.Errorf("mcproxy_backend_ejection_capped after it was ejected: %v", v)
			}
			// Its keys now move to a stand-in, like any ejected backend's.
			if got := memcachedtest.RoundTrip(t, c, "set "+k2+" 0 0 1\r\nz\r\n", "\r\n", 1); got != "STORED\r\n" {
				t.Fatalf("set of an ejected backend's key: %q", got)
			}
		})
	}
}

// TestEjectionCapZero: max_ejected 0 never ejects: a dead backend's keys
// fail fast, as with auto_eject off. A pool of one never ejects by default,
// and a proxy whose only backend is capped is not ready.
func TestEjectionCapZero(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.MaxEjected = MaxEjectedBackends(0) })
	victim := tp.backends[0]
	c, dead, alive := storeDeadAndAlive(t, tp, victim.Addr, tp.backends[1].Addr)
	victim.Kill()
	waitCapped(t, tp, victim.Addr, true)
	if n := len(tp.pool0().members); n != 3 {
		t.Fatalf("max_ejected 0, but the ring has %d members", n)
	}
	got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("get %s %s\r\nset %s 0 0 1\r\nz\r\n", dead, alive, dead), "SERVER_ERROR backend unavailable\r\n", 1)
	if want := fmt.Sprintf("VALUE %s 0 1\r\ny\r\nEND\r\nSERVER_ERROR backend unavailable\r\n", alive); got != want {
		t.Fatalf("with max_ejected 0:\n got %q\nwant %q", got, want)
	}
	if ok, why := tp.Ready(); !ok {
		t.Fatalf("not ready with two live backends: %s", why)
	}

	one := startProxy(t, 1, nil)
	one.backends[0].Kill()
	waitCapped(t, one, one.backends[0].Addr, true)
	if ok, why := one.Ready(); ok || why != "no live backend" {
		t.Fatalf("Ready with the only backend down: %v %q", ok, why)
	}
	if got := memcachedtest.RoundTrip(t, memcachedtest.Dial(t, one.addr), "set k 0 0 1\r\nx\r\n", "\r\n", 1); got != "SERVER_ERROR backend unavailable\r\n" {
		t.Fatalf("set with the only backend down: %q", got)
	}
}

// TestEjectionCapLive: raising the cap on a running proxy ejects the
// capped backend at once; lowering it brings the latest-failed back.
func TestEjectionCapLive(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.MaxEjected = MaxEjectedBackends(0) })
	a, b := tp.backends[0], tp.backends[1]
	a.Kill()
	waitCapped(t, tp, a.Addr, true)
	b.Kill()
	waitCapped(t, tp, b.Addr, true)
	setCap := func(c EjectionCap) {
		t.Helper()
		s := tp.Settings()
		s.MaxEjected = c
		res, err := tp.Reconfigure(s)
		if err != nil || !res.MaxEjectedChanged || !res.Changed() || res.HealthChanged || res.RingChanged {
			t.Fatalf("Reconfigure of the cap to %s: %+v, %v", c, res, err)
		}
	}
	setCap(MaxEjectedBackends(2))
	waitInRing(t, tp, a.Addr, false)
	waitInRing(t, tp, b.Addr, false)
	setCap(MaxEjectedBackends(1))
	// a failed first, so a stays out and b is held in the ring.
	waitCapped(t, tp, b.Addr, true)
	waitInRing(t, tp, b.Addr, true)
	waitInRing(t, tp, a.Addr, false)
}
