package proxy

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/ring"
)

// movedShare is the share of sample keys whose backend differs between two
// route tables.
func movedShare(a, b *poolTable) float64 {
	const n = 100_000
	moved := 0
	buf := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		buf = strconv.AppendInt(append(buf[:0], "k:"...), int64(i), 10)
		if a.members[a.place.Locate(buf)].addr != b.members[b.place.Locate(buf)].addr {
			moved++
		}
	}
	return float64(moved) / n
}

// ownedShare is the share of sample keys that table t routes to addr.
func ownedShare(t *poolTable, addr string) float64 {
	const n = 100_000
	owned := 0
	buf := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		buf = strconv.AppendInt(append(buf[:0], "k:"...), int64(i), 10)
		if t.members[t.place.Locate(buf)].addr == addr {
			owned++
		}
	}
	return float64(owned) / n
}

// TestReconfigureUnderLoad changes the backend list of a running proxy
// under a steady client load: add a fourth backend, remove one, change a
// weight, try an invalid list, then a valid one. No client may see an
// error at any step.
func TestReconfigureUnderLoad(t *testing.T) {
	servers := []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
	tp := startProxyFor(t, servers[:3], func(o *Options) { o.Ring = ring.Config{} }) // default ring
	load := memcachedtest.StartLoad(t, tp.addr, 8, "load:", 5000)
	load.Check(t, "before any change", 500)
	list := func(ws ...int) []Backend {
		var bs []Backend
		for i, w := range ws {
			if w > 0 {
				bs = append(bs, Backend{Addr: servers[i].Addr, Weight: w})
			}
		}
		return bs
	}
	step := func(name string, bs []Backend) (before, after *poolTable) {
		t.Helper()
		before = tp.pool0()
		res, err := tp.reconfigure(bs, ring.Config{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Added backends join once the health checker has seen them answer.
		for _, b := range bs {
			waitInRing(t, tp, b.Addr, true)
		}
		after = tp.pool0()
		t.Logf("%-22s moved %.3f of keys; %+v", name, movedShare(before, after), res)
		load.Check(t, name, 500)
		return before, after
	}

	_, after := step("add a fourth", list(1, 1, 1, 1))
	if share := ownedShare(after, servers[3].Addr); share < 0.15 || share > 0.35 {
		t.Errorf("the new backend owns %.3f of the keys, want about a quarter", share)
	}
	// The new backend receives its share of the load's writes.
	memcachedtest.WaitFor(t, "writes to the added backend", func() bool { return memcachedtest.Stat(t, servers[3].Addr, "cmd_set") >= 100 })

	_, after = step("remove the first", list(0, 1, 1, 1))
	if ownedShare(after, servers[0].Addr) != 0 {
		t.Error("a removed backend still owns keys")
	}
	_, after = step("weight 2 on the second", list(0, 2, 1, 1))
	if share := ownedShare(after, servers[1].Addr); share < 0.35 {
		t.Errorf("a weight-2 backend of 4 shares owns %.3f of the keys, want about a half", share)
	}

	gen, _ := tp.ConfigGeneration()
	if _, err := tp.reconfigure([]Backend{{Addr: servers[1].Addr}, {Addr: servers[1].Addr}}, ring.Config{}); err == nil {
		t.Fatal("a duplicate backend was accepted")
	}
	if _, err := tp.reconfigure(list(0, 1, 1, 1), ring.Config{Load: 0.5}); err == nil {
		t.Fatal("ring load 0.5 was accepted")
	}
	if g, _ := tp.ConfigGeneration(); g != gen {
		t.Fatalf("a refused reconfigure moved the generation from %d to %d", gen, g)
	}
	load.Check(t, "invalid lists refused", 500)
	step("back to three", list(1, 1, 1, 0))
	if g, _ := tp.ConfigGeneration(); g != gen+1 {
		t.Fatalf("generation %d after one more reconfigure, want %d", g, gen+1)
	}
	stats := memcachedtest.Stats(t, tp.addr, "")
	if stats["config_generation"] != strconv.FormatUint(gen+1, 10) || stats["backends"] != "3" {
		t.Errorf("stats after reloads: generation %q backends %q", stats["config_generation"], stats["backends"])
	}
	load.Stop()
	load.CheckErrors(t, "after the last change")
	t.Logf("%d client operations, no errors", load.Ops())
}

// TestRemovedBackendDrains: commands already sent to a backend that a
// reload removes still get their replies.
func TestRemovedBackendDrains(t *testing.T) {
	tp := startProxy(t, 2, func(o *Options) { o.Health.AlwaysUp = true })
	victim, other := tp.backends[0], tp.backends[1]
	k := keyOn(t, tp, victim.Addr, "drain")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nx\r\n", k), "STORED\r\n", 1)
	// Freeze the backend so that a get stays in flight across the reload.
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })
	if _, err := c.Write([]byte("get " + k + "\r\n")); err != nil {
		t.Fatal(err)
	}
	waitInFlight(t, tp, victim.Addr)
	if _, err := tp.reconfigure([]Backend{{Addr: other.Addr}}, ring.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := victim.Thaw(); err != nil {
		t.Fatal(err)
	}
	got := memcachedtest.RoundTrip(t, c, "", "END\r\n", 1)
	if got != fmt.Sprintf("VALUE %s 0 1\r\nx\r\nEND\r\n", k) {
		t.Fatalf("in-flight get across the removal of its backend: %q", got)
	}
	// New commands on the key go to the remaining backend.
	for _, m := range tp.pool0().members {
		t.Logf("member %s", m.addr)
	}
	if got := memcachedtest.RoundTrip(t, c, "get "+k+"\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("get after removal: %q", got)
	}
}

// TestReaddedBackendJoinsFlushed: a backend that a reload removed and a
// later reload lists again joins only after the checker has seen it answer,
// and flushed, so it never serves the values it kept from before; an
// address nothing answers on never joins at all.
func TestReaddedBackendJoinsFlushed(t *testing.T) {
	tp := startProxy(t, 2, nil)
	a, b := tp.backends[0], tp.backends[1]
	k := keyOn(t, tp, a.Addr, "rejoin")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 3\r\nold\r\n", "STORED\r\n", 1)
	rc := tp.pool0().opts.Ring // the same ring, so k returns to a

	if _, err := tp.reconfigure([]Backend{{Addr: b.Addr}}, rc); err != nil {
		t.Fatal(err)
	}
	memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 3\r\nnew\r\n", "STORED\r\n", 1) // now on b

	port, err := memcachedtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := tp.reconfigure([]Backend{{Addr: a.Addr}, {Addr: b.Addr}, {Addr: nobody}}, rc); err != nil {
		t.Fatal(err)
	}
	waitInRing(t, tp, a.Addr, true)
	if got := memcachedtest.RoundTrip(t, c, "get "+k+"\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("a re-added backend served %q; want a miss, never the value from before", got)
	}
	// Keys keep working while the dead address waits outside the ring.
	for i := 0; i < 50; i++ {
		key := fmt.Sprintf("alive%d", i)
		if got := memcachedtest.RoundTrip(t, c, "set "+key+" 0 0 1\r\nx\r\n", "\r\n", 1); got != "STORED\r\n" {
			t.Fatalf("set %s with a dead address pending: %q", key, got)
		}
	}
	for _, m := range tp.pool0().members {
		if m.addr == nobody {
			t.Fatal("an address nothing answers on joined the ring")
		}
	}
}

// TestReconfigureSettingsTogether: Settings returns what is in force, and
// passing it back changes nothing but the generation; one Reconfigure
// applies backends, ring, health tuning and ejection cap together and
// reports each; a refused one leaves every part as it was.
func TestReconfigureSettingsTogether(t *testing.T) {
	tp := startProxy(t, 2, nil)
	s0 := tp.Settings()
	if len(s0.Backends) != 2 || s0.Backends[0] != (Backend{Addr: tp.backends[0].Addr, Weight: 1}) ||
		s0.Health.Interval != 100*time.Millisecond || s0.Health.FailureLimit != 3 || s0.Health.BeforeUp != nil ||
		s0.Ring.Partitions != 271 || s0.MaxEjected.String() != "50%" {
		t.Fatalf("Settings at start: %+v", s0)
	}
	res, err := tp.Reconfigure(s0)
	if err != nil || res.Changed() || res.Generation != 2 {
		t.Fatalf("Reconfigure with the settings in force: %+v, %v", res, err)
	}

	s := tp.Settings()
	s.Backends[1].Weight = 2
	s.Ring.Load = 2
	s.Health.Interval, s.Health.FailureLimit = 200*time.Millisecond, 7
	s.MaxEjected = MaxEjectedBackends(1)
	res, err = tp.Reconfigure(s)
	if err != nil {
		t.Fatal(err)
	}
	if !res.RingChanged || !res.HealthChanged || !res.MaxEjectedChanged || len(res.Reweighted) != 1 ||
		len(res.Added)+len(res.Removed) > 0 || res.Generation != 3 {
		t.Fatalf("Reconfigure of every part: %+v", res)
	}
	want := map[string]string{"health_interval": "200ms", "health_failure_limit": "7", "health_success_limit": "2",
		"max_ejected": "1", "ring_load": "2"}
	st := memcachedtest.Stats(t, tp.addr, "settings")
	for k, v := range want {
		if st[k] != v {
			t.Errorf("stats settings %s = %q after Reconfigure, want %q", k, st[k], v)
		}
	}
	if tp.health.Config().BeforeUp == nil {
		t.Error("Reconfigure dropped the flush_on_readd hook, which is start-only")
	}

	bad := tp.Settings()
	bad.Health.FailureLimit = 9
	bad.MaxEjected = MaxEjectedPercent(10)
	bad.Ring.Load = 0.5
	if _, err := tp.Reconfigure(bad); err == nil {
		t.Fatal("ring load 0.5 was accepted")
	}
	if got := tp.Settings(); got.Health.FailureLimit != 7 || got.MaxEjected.String() != "1" || got.Ring.Load != 2 {
		t.Fatalf("a refused Reconfigure changed the settings: %+v", got)
	}
	if g, _ := tp.ConfigGeneration(); g != 3 {
		t.Fatalf("a refused Reconfigure moved the generation to %d", g)
	}
}
