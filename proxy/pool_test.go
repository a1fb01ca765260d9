package proxy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/nutcrackertest"
	"github.com/mcproxy/mcproxy/ring"
)

// poolOf makes a Pool of servers with the given placement options.
func poolOf(name string, servers []*memcachedtest.Server, o ring.PlacementOptions) Pool {
	pl := Pool{Name: name, Placement: o}
	for _, s := range servers {
		pl.Backends = append(pl.Backends, Backend{Addr: s.Addr, Weight: 1})
	}
	return pl
}

// startServers starts n memcached servers.
func startServers(t *testing.T, n int) []*memcachedtest.Server {
	ss := make([]*memcachedtest.Server, n)
	for i := range ss {
		ss[i] = memcachedtest.Start(t)
	}
	return ss
}

// holders returns the addresses of the servers among ss that hold key.
func holders(t *testing.T, ss []*memcachedtest.Server, key string) []string {
	t.Helper()
	var out []string
	for _, s := range ss {
		_, err := memcache.New(s.Addr).Get(key)
		switch {
		case err == nil:
			out = append(out, s.Addr)
		case !errors.Is(err, memcache.ErrCacheMiss):
			t.Fatalf("get %s from %s: %v", key, s.Addr, err)
		}
	}
	return out
}

// wantOnly fails unless key is on exactly the server that pl's placement
// names, and on no other of all.
func wantOnly(t *testing.T, all []*memcachedtest.Server, pl Pool, key string) {
	t.Helper()
	p, err := ring.NewPlacement(placementServers(pl.Backends), pl.Placement)
	if err != nil {
		t.Fatal(err)
	}
	want := pl.Backends[p.Locate([]byte(key))].Addr
	if got := holders(t, all, key); len(got) != 1 || got[0] != want {
		t.Fatalf("key %q (pool %s) is on %v, want only %s", key, pl.Name, got, want)
	}
}

func TestPrefixRoutesAndHashTagsPlaceKeys(t *testing.T) {
	ss := startServers(t, 5)
	main := poolOf("main", ss[:3], ring.PlacementOptions{HashTag: "{}"})
	sessions := poolOf("sessions", ss[3:], ring.PlacementOptions{Distribution: ring.DistKetama, Hash: ring.HashFNV1a64})
	tp := startProxyFor(t, ss, func(o *Options) {
		o.Backends = nil
		o.Pools = []Pool{main, sessions}
		o.Routes = []Route{{Prefix: "sess:", Pool: "sessions"}, {Pool: "main"}}
	})
	c := memcache.New(tp.addr)
	tagged := map[string]bool{} // servers holding a key of tag {7}
	for i := range 200 {
		for _, k := range []string{fmt.Sprintf("sess:%d", i), fmt.Sprintf("user:{%d}:%d", i%10, i)} {
			if err := c.Set(&memcache.Item{Key: k, Value: []byte(k)}); err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
		}
	}
	for i := range 200 {
		wantOnly(t, ss, sessions, fmt.Sprintf("sess:%d", i))
		k := fmt.Sprintf("user:{%d}:%d", i%10, i)
		wantOnly(t, ss, main, k)
		if i%10 == 7 {
			tagged[holders(t, ss, k)[0]] = true
		}
	}
	if len(tagged) != 1 {
		t.Fatalf("keys of tag {7} are on %d servers, want 1", len(tagged))
	}
	// A multi-get across both pools answers every key in order.
	keys := []string{"sess:1", "user:{1}:1", "sess:2", "user:{2}:2", "nokey"}
	got, err := c.GetMulti(keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[:4] {
		if it := got[k]; it == nil || string(it.Value) != k {
			t.Fatalf("get_multi %s: %v", k, it)
		}
	}
	if len(got) != 4 {
		t.Fatalf("get_multi returned %d keys, want 4", len(got))
	}
	st := memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
	if st["pool:sessions:distribution"] != "ketama" || st["pool:sessions:hash"] != "fnv1a_64" ||
		st["pool:main:live_backends"] != "3" || st["route:0:prefix"] != "sess:" || st["route:1:pool"] != "main" {
		t.Fatalf("stats pools: %v", st)
	}
}

func TestServerInTwoPoolsIsOneBackend(t *testing.T) {
	ss := startServers(t, 3)
	a := poolOf("a", ss[:2], ring.PlacementOptions{})
	b := poolOf("b", ss[1:], ring.PlacementOptions{Distribution: ring.DistModula, Hash: ring.HashCRC32a})
	b.Backends[0].Weight = 3
	tp := startProxyFor(t, ss, func(o *Options) {
		o.Backends = nil
		o.Pools = []Pool{a, b}
		o.Routes = []Route{{Prefix: "b:", Pool: "b"}, {Pool: "a"}}
	})
	if n := len(tp.table.Load().all); n != 3 {
		t.Fatalf("%d backends, want 3: the shared server once", n)
	}
	st := memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats backends\r\n", "END\r\n", 1))
	shared := "backend:" + ss[1].Addr + ":"
	if st[shared+"pools"] != "a,b" || st[shared+"weight"] != "1" || st["backend:"+ss[2].Addr+":pools"] != "b" {
		t.Fatalf("stats backends: %v", st)
	}
	c := memcache.New(tp.addr)
	for i := range 100 {
		for _, k := range []string{fmt.Sprintf("b:%d", i), fmt.Sprintf("a:%d", i)} {
			if err := c.Set(&memcache.Item{Key: k, Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 100 {
		wantOnly(t, ss, b, fmt.Sprintf("b:%d", i))
		wantOnly(t, ss, a, fmt.Sprintf("a:%d", i))
	}
}

func TestPoolsAndRoutesReloadLive(t *testing.T) {
	ss := startServers(t, 3)
	tp := startProxyFor(t, ss[:2], nil)
	load := memcachedtest.StartLoad(t, tp.addr, 4, "sess:", 200)
	load.WaitOps(t, "load on one pool", 500)

	s := tp.Settings()
	main := Pool{Name: "main", Backends: s.Backends, Placement: ring.PlacementOptions{Ring: s.Ring}}
	sessions := poolOf("sessions", ss[2:], ring.PlacementOptions{})
	s.Backends, s.Pools = nil, []Pool{main, sessions}
	s.Routes = []Route{{Prefix: "sess:", Pool: "sessions"}, {Pool: "main"}}
	res, err := tp.Reconfigure(s)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(res.PoolsAdded, []string{"main", "sessions"}) || !slicesEqual(res.PoolsRemoved, []string{DefaultPoolName}) ||
		!res.RoutesChanged || !slicesEqual(res.Added, []string{ss[2].Addr}) {
		t.Fatalf("reconfigure result: %+v", res)
	}
	memcachedtest.WaitFor(t, "the sessions pool to take its server", func() bool {
		pt := tp.table.Load().poolOf([]byte("sess:1"))
		return pt.pool.name == "sessions" && pt.place != nil
	})
	before := load.Ops()
	load.WaitOps(t, "load on two pools", before+500)
	if err := memcache.New(tp.addr).Set(&memcache.Item{Key: "sess:x", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if got := holders(t, ss, "sess:x"); len(got) != 1 || got[0] != ss[2].Addr {
		t.Fatalf("sess:x is on %v, want %s", got, ss[2].Addr)
	}
	// Back to one pool: the sessions server leaves.
	s = tp.Settings()
	s.Pools, s.Routes = []Pool{main}, nil
	if _, err := tp.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	load.WaitOps(t, "load after the sessions pool left", load.Ops()+500)
	load.CheckErrors(t, "reloads of pools and routes")
}

// TestFindsKeysThatRealClientsPlaced: keys written by nutcracker (ketama,
// fnv1a_64, named and weighted servers) and by gomemcache's ServerList
// (crc32 mod N) on their own are all found through mcproxy with the
// matching pool.
func TestFindsKeysThatRealClientsPlaced(t *testing.T) {
	ss := startServers(t, 3)
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d:profile:%x", i, crc32.ChecksumIEEE([]byte{byte(i), byte(i >> 8)}))
	}
	nut := nutcrackertest.Pool{Distribution: ring.DistKetama, Hash: ring.HashFNV1a64}
	twem := Pool{Name: "twem", Placement: ring.PlacementOptions{Distribution: ring.DistKetama, Hash: ring.HashFNV1a64}}
	for i, s := range ss {
		name := fmt.Sprintf("cache%d", i)
		nut.Servers = append(nut.Servers, nutcrackertest.Server{Addr: s.Addr, Weight: i + 1, Name: name})
		twem.Backends = append(twem.Backends, Backend{Name: name, Addr: s.Addr, Weight: i + 1})
	}
	nc := memcache.New(nutcrackertest.Start(t, nut))
	gm := memcache.New(ss[0].Addr, ss[1].Addr, ss[2].Addr) // a ServerList: crc32 mod 3
	for _, k := range keys {
		if err := nc.Set(&memcache.Item{Key: "twem:" + k, Value: []byte("t")}); err != nil {
			t.Fatalf("set through nutcracker: %v", err)
		}
		if err := gm.Set(&memcache.Item{Key: "go:" + k, Value: []byte("g")}); err != nil {
			t.Fatalf("set with gomemcache: %v", err)
		}
	}
	gomc := poolOf("gomemcache", ss, ring.PlacementOptions{Distribution: ring.DistModula, Hash: ring.HashCRC32a})
	for i := range gomc.Backends {
		gomc.Backends[i].Name = fmt.Sprintf("cache%d", i) // one name per server across pools
	}
	tp := startProxyFor(t, ss, func(o *Options) {
		o.Backends, o.Pools = nil, []Pool{twem, gomc}
		o.Routes = []Route{{Prefix: "go:", Pool: "gomemcache"}, {Pool: "twem"}}
	})
	c := memcache.New(tp.addr)
	for _, pre := range []string{"twem:", "go:"} {
		found := 0
		for i := 0; i < len(keys); i += 50 {
			batch := make([]string, 0, 50)
			for _, k := range keys[i:min(i+50, len(keys))] {
				batch = append(batch, pre+k)
			}
			got, err := c.GetMulti(batch)
			if err != nil {
				t.Fatal(err)
			}
			found += len(got)
		}
		if found != len(keys) {
			t.Fatalf("%s keys: mcproxy found %d of %d", strings.TrimSuffix(pre, ":"), found, len(keys))
		}
	}
}

func TestPoolChecksRefuseBadRoutes(t *testing.T) {
	p := []Pool{{Name: "a", Backends: []Backend{{Addr: "127.0.0.1:1"}}}, {Name: "b", Backends: []Backend{{Addr: "127.0.0.1:2"}}}}
	for _, c := range []struct {
		routes []Route
		want   string
	}{
		{[]Route{{Prefix: "x", Pool: "a"}}, "no default route"},
		{[]Route{{Pool: "a"}, {Prefix: "x", Pool: "b"}}, "never matches"},
		{[]Route{{Prefix: "a", Pool: "a"}, {Prefix: "ab", Pool: "b"}, {Pool: "a"}}, "never matches"},
		{[]Route{{Prefix: "x", Pool: "c"}, {Pool: "a"}}, `unknown pool "c"`},
		{[]Route{{Pool: "a", WarmFrom: "a"}}, "own pool"},
	} {
		if _, err := checkPools(p, c.routes); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("routes %+v: %v, want %q", c.routes, err, c.want)
		}
	}
	two := []Pool{p[0], {Name: "b", Backends: []Backend{{Name: "other", Addr: "127.0.0.1:1"}}}}
	if _, err := checkPools(two, []Route{{Pool: "a"}}); err == nil || !strings.Contains(err.Error(), "one name") {
		t.Errorf("one server, two names: %v", err)
	}
	if _, err := checkPools(p, []Route{{Prefix: "ab", Pool: "b"}, {Prefix: "a", Pool: "a"}, {Pool: "a"}}); err != nil {
		t.Errorf("longer prefix first: %v", err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// TestEjectionCapPerPool: the cap applies to each pool on its own. With a
// cap of 50%, a dead server shared by a pool of two and a pool of four
// leaves both; a second dead server of the pool of four leaves it too (2
// of 4), but the pool of two, whose other server is up, keeps serving
// with one.
func TestEjectionCapPerPool(t *testing.T) {
	ss := startServers(t, 5)
	small := poolOf("small", ss[:2], ring.PlacementOptions{})
	big := poolOf("big", ss[1:], ring.PlacementOptions{})
	tp := startProxyFor(t, ss, func(o *Options) {
		o.Backends, o.Pools = nil, []Pool{small, big}
		o.Routes = []Route{{Prefix: "b:", Pool: "big"}, {Pool: "small"}}
		o.MaxEjected = MaxEjectedPercent(50)
	})
	poolStat := func(field string) map[string]string {
		st := memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
		return map[string]string{"small": st["pool:small:"+field], "big": st["pool:big:"+field]}
	}
	if m := poolStat("max_ejected_backends"); m["small"] != "1" || m["big"] != "2" {
		t.Fatalf("caps: %v", m)
	}
	ss[1].Kill() // in both pools
	memcachedtest.WaitFor(t, "the shared server out of both pools", func() bool {
		m := poolStat("ring_members")
		return m["small"] == "1" && m["big"] == "3"
	})
	ss[2].Kill() // big only: 2 of 4 is its cap
	memcachedtest.WaitFor(t, "the second server out of the big pool", func() bool {
		m := poolStat("ring_members")
		return m["big"] == "2"
	})
	c := memcache.New(tp.addr)
	for i := range 50 {
		for _, k := range []string{fmt.Sprintf("b:%d", i), fmt.Sprintf("s:%d", i)} {
			if err := c.Set(&memcache.Item{Key: k, Value: []byte("v")}); err != nil {
				t.Fatalf("set %s with both pools at their cap: %v", k, err)
			}
		}
	}
	ss[3].Kill() // past big's cap: held in its placement, failing fast
	memcachedtest.WaitFor(t, "the third server of the big pool capped", func() bool {
		m := poolStat("live_backends")
		return m["big"] == "1" && poolStat("ring_members")["big"] == "2"
	})
	if m := poolStat("live_backends"); m["small"] != "1" {
		t.Fatalf("the small pool lost a server to the big pool's cap: %v", m)
	}
}

// TestRouteMovedBackServesNothingStale: a reload moves a prefix to another
// pool, a write changes a key there, and a second reload moves the prefix
// back: the first pool's old copy was deleted by the write, so the key
// does not read its value from before.
func TestRouteMovedBackServesNothingStale(t *testing.T) {
	ss := startServers(t, 2)
	main := poolOf("main", ss[:1], ring.PlacementOptions{})
	sessions := poolOf("sessions", ss[1:], ring.PlacementOptions{})
	split := []Route{{Prefix: "sess:", Pool: "sessions"}, {Pool: "main"}}
	tp := startProxyFor(t, ss, func(o *Options) {
		o.Backends, o.Pools, o.Routes = nil, []Pool{main, sessions}, split
	})
	c := memcache.New(tp.addr)
	set := func(v string) {
		t.Helper()
		if err := c.Set(&memcache.Item{Key: "sess:1", Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	reroute := func(routes []Route) {
		t.Helper()
		s := tp.Settings()
		s.Routes = routes
		if _, err := tp.Reconfigure(s); err != nil {
			t.Fatal(err)
		}
	}
	set("v1") // on sessions
	reroute([]Route{{Pool: "main"}})
	set("v2") // on main; sessions still holds v1
	if h := holders(t, ss[1:], "sess:1"); len(h) != 0 {
		t.Fatalf("the write after the move left the old copy on %v", h)
	}
	reroute(split)
	it, err := c.Get("sess:1")
	if err == nil {
		t.Fatalf("sess:1 reads %q after moving back, want a miss", it.Value)
	}
	if !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatal(err)
	}
}

// TestFindsKeysThatPHPAndDalliPlaced: keys written by php-memcached with
// OPT_LIBKETAMA_COMPATIBLE and by Ruby's Dalli, each over the same
// weighted servers on its own, are all found through mcproxy with a
// libketama and a dalli pool (the scripts are ring's compatibility ones).
func TestFindsKeysThatPHPAndDalliPlaced(t *testing.T) {
	for _, c := range []struct{ bin, pkgs, script, dist, prefix string }{
		{"php", "php-cli php-memcached", "../ring/testdata/libketama.php", ring.DistLibketama, "php"},
		{"ruby", "ruby ruby-dalli", "../ring/testdata/dalli.rb", ring.DistDalli, "rb"},
	} {
		t.Run(c.dist, func(t *testing.T) {
			path, err := exec.LookPath(c.bin)
			if err != nil {
				t.Fatalf("%s not installed: run `make deps` (apt-get install %s)", c.bin, c.pkgs)
			}
			ss := startServers(t, 3)
			weights := []int{1, 3, 2}
			keys := make([]string, 2000)
			var hexKeys strings.Builder
			for i := range keys {
				keys[i] = fmt.Sprintf("%s:user:%d:%x", c.prefix, i, i*2654435761)
				hexKeys.WriteString(hex.EncodeToString([]byte(keys[i])) + "\n")
			}
			keyfile := filepath.Join(t.TempDir(), "keys.hex")
			if err := os.WriteFile(keyfile, []byte(hexKeys.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			pl := Pool{Name: c.dist, Placement: ring.PlacementOptions{Distribution: c.dist}}
			args := []string{c.script, keyfile}
			for i, s := range ss {
				args = append(args, fmt.Sprintf("%s:%d", s.Addr, weights[i]))
				pl.Backends = append(pl.Backends, Backend{Addr: s.Addr, Weight: weights[i]})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
			if err != nil || string(out) != fmt.Sprintf("stored %d\n", len(keys)) {
				t.Fatalf("%s %s: %v: %s", c.bin, c.script, err, out)
			}
			tp := startProxyFor(t, ss, func(o *Options) { o.Backends, o.Pools = nil, []Pool{pl} })
			mc := memcache.New(tp.addr)
			found := 0
			for i := 0; i < len(keys); i += 50 {
				got, err := mc.GetMulti(keys[i:min(i+50, len(keys))])
				if err != nil {
					t.Fatal(err)
				}
				found += len(got)
			}
			if found != len(keys) {
				t.Fatalf("mcproxy found %d of the %d keys %s wrote", found, len(keys), c.bin)
			}
		})
	}
}
