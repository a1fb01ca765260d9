package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/dnsmasqtest"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.uber.org/zap"
)

// The tests of pools found in DNS run the mcproxy binary against a real
// dnsmasq (internal/testkit/dnsmasqtest) and real memcached. All is on
// 127.0.0.1, so a target "moving to a new address" is a new memcached on a
// new port under the same SRV target.

const discoverSRV = "_memcache._tcp." + dnsmasqtest.Zone

// target is mc-i.mc.test.
func target(i int) string { return fmt.Sprintf("mc-%d.%s", i, dnsmasqtest.Zone) }

// srvRecords are SRV records for targets mc-0.. at the servers' ports,
// each target's A record 127.0.0.1.
func srvRecords(servers ...*memcachedtest.Server) dnsmasqtest.Records {
	r := dnsmasqtest.Records{A: map[string]string{}}
	for i, s := range servers {
		if s == nil {
			continue
		}
		r.SRV = append(r.SRV, dnsmasqtest.SRV{Name: discoverSRV, Target: target(i), Port: s.Port, Weight: 1})
		r.A[target(i)] = "127.0.0.1"
	}
	return r
}

// startDiscovered starts mcproxy with one pool, main, found in DNS by
// discover (the YAML of the discover section, one line), with an admin
// endpoint; it returns the proxy and the admin address.
func startDiscovered(t *testing.T, discover string) (*childproxy.TestProxy, string) {
	t.Helper()
	admin := memcachedtest.FreeAddr(t)
	config := "listen: %s\nadmin: " + admin + "\nhealth: {interval: 200ms, timeout: 200ms}\n" +
		"pools:\n  main:\n    discover: " + discover + "\n"
	return startBinary(t, config), admin
}

// setKeys stores prefix0..prefix(n-1) through addr, each with its own key
// as the value.
func setKeys(t *testing.T, addr, prefix string, n int) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		fmt.Fprintf(&b, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
	}
	memcachedtest.Send(t, addr, b.String(), "STORED\r\n", n)
}

// hits counts the keys prefix0..prefix(n-1) a get through addr finds.
func hits(t *testing.T, addr, prefix string, n int) int {
	t.Helper()
	var b strings.Builder
	b.WriteString("get")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " %s%d", prefix, i)
	}
	b.WriteString("\r\n")
	return strings.Count(memcachedtest.Send(t, addr, b.String(), "END\r\n", 1), "VALUE ")
}

// metric waits until the admin's metric name (with labels) satisfies ok.
func waitMetric(t *testing.T, admin, name string, ok func(float64) bool) {
	t.Helper()
	memcachedtest.WaitFor(t, "metric "+name, func() bool {
		v, found := scrape(t, admin)[name]
		return found && ok(v)
	})
}

// TestDiscoverSRVServesAndGrows: a pool found by SRV serves on all its
// targets; a third target added in DNS joins and takes about a third of
// new keys, with no client error meanwhile.
func TestDiscoverSRVServesAndGrows(t *testing.T) {
	a, b, c := memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)
	dns := dnsmasqtest.Start(t, srvRecords(a, b))
	p, admin := startDiscovered(t, fmt.Sprintf("{srv: %s, resolver: %s, interval: 100ms}", discoverSRV, dns.Addr))
	memcachedtest.WaitStat(t, "two targets", p.Listen, "live_backends", "2")

	const n = 600
	setKeys(t, p.Listen, "first:", n)
	if got := hits(t, p.Listen, "first:", n); got != n {
		t.Fatalf("%d of %d keys found", got, n)
	}
	for _, s := range []*memcachedtest.Server{a, b} {
		if items := memcachedtest.Stat(t, s.Addr, "curr_items"); items < n/4 {
			t.Errorf("target %s holds %d of %d keys", s.Addr, items, n)
		}
	}

	load := memcachedtest.StartLoad(t, p.Listen, 4, "load:", 500)
	load.WaitOps(t, "before the third target", 200)
	dns.Restart(t, srvRecords(a, b, c))
	memcachedtest.WaitStat(t, "third target in DNS", p.Listen, "live_backends", "3")
	load.Check(t, "third target joined", 200)
	waitMetric(t, admin, `mcproxy_discover_backends{pool="main"}`, func(v float64) bool { return v == 3 })

	before := memcachedtest.Stat(t, c.Addr, "curr_items")
	setKeys(t, p.Listen, "second:", 3*n)
	share := float64(memcachedtest.Stat(t, c.Addr, "curr_items")-before) / float64(3*n)
	if share < 0.2 || share > 0.47 {
		t.Errorf("the third target took %.0f%% of new keys, want about a third", 100*share)
	}
	if got := hits(t, p.Listen, "second:", 3*n); got != 3*n {
		t.Errorf("%d of %d new keys found", got, 3*n)
	}
	load.CheckErrors(t, "end")
}

// TestDiscoverKeepsListThroughMovesAndOutages: a target that comes back on
// a new address keeps its keys' place (no key of the others moves, and its
// own keys go to its new server); a DNS outage (dnsmasq killed) and an
// empty answer (NXDOMAIN) change nothing: every key still hits.
func TestDiscoverKeepsListThroughMovesAndOutages(t *testing.T) {
	s := []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
	dns := dnsmasqtest.Start(t, srvRecords(s...))
	p, admin := startDiscovered(t, fmt.Sprintf("{srv: %s, resolver: %s, interval: 100ms, missing_limit: 1}", discoverSRV, dns.Addr))
	memcachedtest.WaitStat(t, "three targets", p.Listen, "live_backends", "3")

	const n = 300
	setKeys(t, p.Listen, "k:", n)
	onMoved := map[string]bool{} // the keys mc-1 holds
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k:%d", i)
		if strings.Contains(memcachedtest.Send(t, s[1].Addr, "get "+k+"\r\n", "END\r\n", 1), "VALUE ") {
			onMoved[k] = true
		}
	}
	if len(onMoved) == 0 || len(onMoved) == n {
		t.Fatalf("mc-1 holds %d of %d keys", len(onMoved), n)
	}

	moved := memcachedtest.Start(t)
	dns.Restart(t, srvRecords(s[0], moved, s[2]))
	info := fmt.Sprintf(`mcproxy_backend_info{addr=%q,backend=%q}`, moved.Addr, target(1))
	waitMetric(t, admin, info, func(v float64) bool { return v == 1 })
	memcachedtest.WaitStat(t, "mc-1 on its new address", p.Listen, "live_backends", "3")
	if got := hits(t, p.Listen, "k:", n); got != n-len(onMoved) {
		t.Errorf("after the move %d keys hit, want the %d of the targets that stayed", got, n-len(onMoved))
	}
	setKeys(t, p.Listen, "k:", n)
	if got := memcachedtest.Stat(t, moved.Addr, "curr_items"); got != len(onMoved) {
		t.Errorf("mc-1's new server holds %d keys, want its %d", got, len(onMoved))
	}

	lookups := func() float64 { return scrape(t, admin)[`mcproxy_discover_lookups_total{pool="main"}`] }
	dns.Kill()
	failures := `mcproxy_discover_failures_total{pool="main"}`
	waitMetric(t, admin, failures, func(v float64) bool { return v >= 3 })
	if got := hits(t, p.Listen, "k:", n); got != n {
		t.Errorf("during a DNS outage %d of %d keys hit", got, n)
	}
	dns.Restart(t, dnsmasqtest.Records{}) // up, but no such name: NXDOMAIN
	empty := `mcproxy_discover_empty_total{pool="main"}`
	waitMetric(t, admin, empty, func(v float64) bool { return v >= 3 })
	if got := hits(t, p.Listen, "k:", n); got != n {
		t.Errorf("with empty answers %d of %d keys hit", got, n)
	}
	if m := scrape(t, admin); m[`mcproxy_discover_backends{pool="main"}`] != 3 || lookups() < 7 {
		t.Errorf("backends %v after %v lookups, want 3", m[`mcproxy_discover_backends{pool="main"}`], lookups())
	}
	memcachedtest.WaitStat(t, "after the outage", p.Listen, "live_backends", "3")
}

// TestDiscoverARecords: with host and port, each address of the name is a
// backend named by its ip:port.
func TestDiscoverARecords(t *testing.T) {
	s := memcachedtest.Start(t)
	host := "memcached." + dnsmasqtest.Zone
	dns := dnsmasqtest.Start(t, dnsmasqtest.Records{A: map[string]string{host: "127.0.0.1"}})
	p, admin := startDiscovered(t, fmt.Sprintf("{host: %s, port: %d, resolver: %s, interval: 100ms}", host, s.Port, dns.Addr))
	memcachedtest.WaitStat(t, "the A record's backend", p.Listen, "live_backends", "1")
	const n = 100
	setKeys(t, p.Listen, "a:", n)
	if got := memcachedtest.Stat(t, s.Addr, "curr_items"); got != n {
		t.Errorf("the backend holds %d of %d keys", got, n)
	}
	waitMetric(t, admin, fmt.Sprintf(`mcproxy_backend_info{addr=%q,backend=%q}`, s.Addr, s.Addr), func(v float64) bool { return v == 1 })
}

// TestReloadKeepsDiscoveredLists: a file reload composes the new file with
// the lists found in DNS (a pool found in DNS keeps its backends beside a
// listed pool the reload adds), and a reload that adds a pool found in DNS
// is refused by its key: its Watcher starts with the process.
func TestReloadKeepsDiscoveredLists(t *testing.T) {
	a, b, listed := memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)
	dns := dnsmasqtest.Start(t, srvRecords(a, b))
	admin, listen := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	head := fmt.Sprintf("listen: %s\nadmin: %s\nhealth: {interval: 200ms, timeout: 200ms}\npools:\n"+
		"  main:\n    discover: {srv: %s, resolver: %s, interval: 100ms}\n", listen, admin, discoverSRV, dns.Addr)
	path := filepath.Join(t.TempDir(), "mcproxy.yaml")
	writeFile(t, path, head)
	p := childproxy.StartT(t, childproxy.BuildT(t), listen, "-config", path, "-log-format", "console")
	memcachedtest.WaitStat(t, "two targets", p.Listen, "live_backends", "2")
	const n = 200
	setKeys(t, p.Listen, "k:", n)

	in := &instance{path: path}
	in.write(t, head+"  listed:\n    backends: ["+listed.Addr+"]\nroutes:\n  - {prefix: \"l:\", pool: listed}\n  - {pool: main}\n")
	memcachedtest.WaitStat(t, "the listed pool added", p.Listen, "live_backends", "3")
	if got := hits(t, p.Listen, "k:", n); got != n {
		t.Errorf("after the reload %d of %d keys of the found pool hit", got, n)
	}
	setKeys(t, p.Listen, "l:", 10)
	if got := memcachedtest.Stat(t, listed.Addr, "curr_items"); got != 10 {
		t.Errorf("the listed pool holds %d of 10 keys", got)
	}

	in.write(t, head+"  more:\n    discover: {srv: _other._tcp.mc.test, resolver: "+dns.Addr+"}\n"+
		"routes:\n  - {prefix: \"m:\", pool: more}\n  - {pool: main}\n")
	p.WaitOutput(t, "pools.more.discover: not found in DNS since the start")
	if got := hits(t, p.Listen, "k:", n); got != n {
		t.Errorf("after the refused reload %d of %d keys hit", got, n)
	}
}

// TestStartWaitsForTheFirstAnswer: without an answer within the bound,
// the start fails naming the pool's key and its lookups.
func TestStartWaitsForTheFirstAnswer(t *testing.T) {
	dns := dnsmasqtest.Start(t, dnsmasqtest.Records{})
	cfg := loadConfig(t, fmt.Sprintf("pools:\n  main:\n    discover: {srv: %s, resolver: %s, interval: 100ms}\n", discoverSRV, dns.Addr))
	d, err := startDiscovery(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	memcachedtest.WaitFor(t, "two lookups", func() bool { return d.watchers["main"].Counts().Lookups >= 2 })
	err = d.waitFirst(context.Background(), time.Millisecond, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "pools.main.discover (") || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("waitFirst: %v, want the pool's key and its empty lookups", err)
	}
	dns.Restart(t, srvRecords(memcachedtest.Start(t)))
	if err := d.waitFirst(context.Background(), memcachedtest.WaitBound, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if got := d.snapshot()["main"]; len(got) != 1 || got[0].Name != target(0) {
		t.Fatalf("found %+v", got)
	}
}

// TestCheckPrintsDiscoveredPools: -check shows what a pool found in DNS
// looks up.
func TestCheckPrintsDiscoveredPools(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	writeFile(t, file, "pools:\n  main:\n    distribution: ketama\n    discover: {srv: "+discoverSRV+"}\n")
	var out, warn bytes.Buffer
	if err := check(file, &out, &warn); err != nil {
		t.Fatal(err)
	}
	want := "pool main: distribution ketama, hash fnv1a_64, backends from DNS: SRV " + discoverSRV +
		" every 5s, asking the system's resolver\nroute (default) -> main\n"
	if _, got, _ := strings.Cut(out.String(), "\n"); got != want {
		t.Errorf("-check printed:\n%s\nwant after the first line:\n%s", out.String(), want)
	}
}

// TestRemovalsCappedByMaxEjected: health.max_ejected bounds the backends
// DNS takes out of a pool; with 0, a target missing from DNS never
// leaves.
func TestRemovalsCappedByMaxEjected(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	dns := dnsmasqtest.Start(t, srvRecords(a, b))
	cfg := loadConfig(t, fmt.Sprintf("health: {max_ejected: 0}\npools:\n  main:\n"+
		"    discover: {srv: %s, resolver: %s, interval: 100ms, missing_limit: 1}\n", discoverSRV, dns.Addr))
	d := discoveryAnswered(t, cfg)
	dns.Restart(t, srvRecords(a))
	w := d.watchers["main"]
	memcachedtest.WaitFor(t, "three capped removals", func() bool { return w.Counts().Capped >= 3 })
	if got := d.snapshot()["main"]; len(got) != 2 {
		t.Fatalf("found %+v, want both targets kept", got)
	}
}

// targetRecords are SRV records for targets mc-0..mc-(n-1), each on its own
// port of 127.0.0.1 (no server behind: discovery alone does not connect).
func targetRecords(n int) dnsmasqtest.Records {
	r := dnsmasqtest.Records{A: map[string]string{}}
	for i := 0; i < n; i++ {
		r.SRV = append(r.SRV, dnsmasqtest.SRV{Name: discoverSRV, Target: target(i), Port: 20000 + i, Weight: 1})
		r.A[target(i)] = "127.0.0.1"
	}
	return r
}

// TestRemovalCapHoldsOverAStreak (the Mcrib incident): answers that keep
// lacking backends, one more at each dnsmasq restart, never take more than
// health.max_ejected (50%: 5 of 10) of the pool in all; per answer, the
// pool would shrink to 3 and then 1. An operator's reload (resetRemovals)
// starts the count afresh from the list as it is.
func TestRemovalCapHoldsOverAStreak(t *testing.T) {
	dns := dnsmasqtest.Start(t, targetRecords(10))
	cfg := loadConfig(t, fmt.Sprintf("health: {max_ejected: 50%%}\npools:\n  main:\n"+
		"    discover: {srv: %s, resolver: %s, interval: 100ms, missing_limit: 1}\n", discoverSRV, dns.Addr))
	d := discoveryAnswered(t, cfg)
	w := d.watchers["main"]
	size := func() int { return len(d.snapshot()["main"]) }
	for n := 9; n >= 2; n-- {
		dns.Restart(t, targetRecords(n))
		if want := max(n, 5); n >= 5 {
			memcachedtest.WaitFor(t, fmt.Sprintf("%d targets", want), func() bool { return size() == want })
			continue
		}
		capped := w.Counts().Capped
		memcachedtest.WaitFor(t, "a capped removal", func() bool { return w.Counts().Capped > capped })
		if got := size(); got != 5 {
			t.Fatalf("with %d targets in DNS the pool has %d, want 5: the cap counts from the 10 before the streak", n, got)
		}
	}
	d.resetRemovals() // the operator's reload: 50% of the 5 may leave now
	memcachedtest.WaitFor(t, "3 targets after the reset", func() bool { return size() == 3 })
	capped := w.Counts().Capped
	memcachedtest.WaitFor(t, "a capped removal", func() bool { return w.Counts().Capped > capped })
	if got := size(); got != 3 {
		t.Fatalf("after the reset the pool has %d, want 3", got)
	}
}

// TestProxiesFindingOnePoolAgree: N proxies that find a pool in the same
// DNS place every key on the same backend, so a client may use any of
// them: each key set through one is found through the other, and sits on
// the same memcached, also after a target joins (docs/operations.md,
// "Many proxies").
func TestProxiesFindingOnePoolAgree(t *testing.T) {
	s := []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
	dns := dnsmasqtest.Start(t, srvRecords(s[0], s[1]))
	// modula places by the order of the list: the proxies agree only if
	// the same answer gives every one of them the same list.
	spec := fmt.Sprintf("{srv: %s, resolver: %s, interval: 100ms}\n    distribution: modula", discoverSRV, dns.Addr)
	p1, _ := startDiscovered(t, spec)
	p2, _ := startDiscovered(t, spec)
	for _, p := range []*childproxy.TestProxy{p1, p2} {
		memcachedtest.WaitStat(t, "two targets", p.Listen, "live_backends", "2")
	}
	const n = 300
	setKeys(t, p1.Listen, "one:", n)
	if got := hits(t, p2.Listen, "one:", n); got != n {
		t.Errorf("%d of %d keys set through one proxy found through the other", got, n)
	}
	dns.Restart(t, srvRecords(s...))
	for _, p := range []*childproxy.TestProxy{p1, p2} {
		memcachedtest.WaitStat(t, "three targets", p.Listen, "live_backends", "3")
	}
	setKeys(t, p2.Listen, "two:", n)
	if got := hits(t, p1.Listen, "two:", n); got != n {
		t.Errorf("after a join, %d of %d keys set through one proxy found through the other", got, n)
	}
	total := 0
	for _, m := range s {
		total += memcachedtest.Stat(t, m.Addr, "curr_items")
	}
	if total != 2*n {
		t.Errorf("the backends hold %d items, want %d: a key is on two servers", total, 2*n)
	}
}

// discoveryAnswered starts cfg's discovery, stopped when the test ends,
// and returns once every discovered pool has had its first answer.
func discoveryAnswered(t *testing.T, cfg config.Config) *discovery {
	t.Helper()
	d, err := startDiscovery(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	if err := d.waitFirst(context.Background(), memcachedtest.WaitBound, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	return d
}
