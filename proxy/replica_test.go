package proxy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// startReplicated starts three memcached servers behind a proxy whose
// default pool keeps two copies of each key.
func startReplicated(t *testing.T, mod func(*Options)) *testProxy {
	t.Helper()
	return startProxy(t, 3, func(o *Options) {
		o.Replicas = 2
		if mod != nil {
			mod(o)
		}
	})
}

// copiesOf returns the addresses of the two backends the pool's placement
// names for key, as ring.Placement.AppendLocations gives them.
func copiesOf(tp *testProxy, key string) []string {
	pt := tp.pool0()
	var out []string
	for _, i := range pt.place.AppendLocations(nil, []byte(key), 2) {
		out = append(out, pt.members[i].addr)
	}
	sort.Strings(out)
	return out
}

// fillReplicated sets n keys with prefix through the proxy.
func fillReplicated(t *testing.T, c *memcache.Client, prefix, value string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%d", prefix, i)
		if err := c.Set(&memcache.Item{Key: keys[i], Value: []byte(value + keys[i])}); err != nil {
			t.Fatalf("set %s: %v", keys[i], err)
		}
	}
	return keys
}

func TestReplicasPutEveryKeyOnTwoBackends(t *testing.T) {
	tp := startReplicated(t, nil)
	c := newClient(t, tp.addr)
	keys := fillReplicated(t, c, "two:", "v", 300)
	perBackend := map[string]int{}
	for _, k := range keys {
		got := holders(t, tp.backends, k)
		sort.Strings(got)
		if want := copiesOf(tp, k); !slices.Equal(got, want) {
			t.Fatalf("key %s is on %v, want exactly %v", k, got, want)
		}
		for _, a := range got {
			perBackend[a]++
		}
	}
	for _, s := range tp.backends {
		if perBackend[s.Addr] == 0 {
			t.Fatalf("backend %s holds no copy: %v", s.Addr, perBackend)
		}
	}
	// A delete removes every copy; so does an incr's decision on the
	// first copy (the others are deleted, not left behind).
	if err := c.Delete(keys[0]); err != nil {
		t.Fatal(err)
	}
	if got := holders(t, tp.backends, keys[0]); len(got) != 0 {
		t.Fatalf("deleted key still on %v", got)
	}
	if err := c.Set(&memcache.Item{Key: "counter", Value: []byte("5")}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Increment("counter", 2); err != nil || n != 7 {
		t.Fatalf("incr: %d %v", n, err)
	}
	if got := holders(t, tp.backends, "counter"); len(got) != 1 {
		t.Fatalf("after incr the counter is on %v, want only its deciding copy", got)
	}
	if it, err := c.Get("counter"); err != nil || string(it.Value) != "7" {
		t.Fatalf("get counter: %v %v", it, err)
	}
	stats := parseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
	if stats["pool:default:replicas"] != "2" || stats["pool:default:copy_writes"] == "0" {
		t.Fatalf("stats pools: %v", stats)
	}
}

// TestReplicasReadNextCopyOnMiss empties the first copy of keys behind
// the proxy's back: every read, single or multi, text or meta, finds the
// second copy, and the reads are counted.
func TestReplicasReadNextCopyOnMiss(t *testing.T) {
	tp := startReplicated(t, nil)
	c := newClient(t, tp.addr)
	keys := fillReplicated(t, c, "miss:", "v", 60)
	pt := tp.pool0()
	for _, k := range keys {
		first := pt.members[pt.place.Locate([]byte(k))].addr
		if err := memcache.New(first).Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		it, err := c.Get(k)
		if err != nil || string(it.Value) != "v"+k {
			t.Fatalf("get %s: %v %v", k, it, err)
		}
	}
	got, err := c.GetMulti(keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("get of %d keys: %d hits, %v", len(keys), len(got), err)
	}
	mg := memcachedtest.Send(t, tp.addr, "mg "+keys[0]+" v\r\n", "\r\n", 2)
	if !strings.HasPrefix(mg, "VA ") {
		t.Fatalf("mg: %q", mg)
	}
	stats := parseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
	if stats["pool:default:later_copy_reads"] != fmt.Sprint(2*len(keys)+1) {
		t.Fatalf("later_copy_reads %s, want %d", stats["pool:default:later_copy_reads"], 2*len(keys)+1)
	}
}

// readAllCopies gets every key through c in multi-gets of 10 and counts hits,
// misses and errors, and the slowest multi-get.
func readAllCopies(c *memcache.Client, keys []string, value string) (hits, errs int, slowest time.Duration, bad error) {
	for i := 0; i < len(keys); i += 10 {
		batch := keys[i:min(i+10, len(keys))]
		start := time.Now()
		got, err := c.GetMulti(batch)
		slowest = max(slowest, time.Since(start))
		if err != nil {
			errs++
			continue
		}
		for k, it := range got {
			if string(it.Value) != value+k && bad == nil {
				bad = fmt.Errorf("key %s: %q", k, it.Value)
			}
			hits++
		}
	}
	return hits, errs, slowest, bad
}

// TestReplicasKillOneKeepsHits kills one of three backends right after
// 3000 keys were written with two copies each: reading them all at once
// finds at least 99.5% (in fact all) with no client error, and so does
// reading them again after it comes back empty.
func TestReplicasKillOneKeepsHits(t *testing.T) {
	tp := startReplicated(t, nil)
	c := newClient(t, tp.addr)
	keys := fillReplicated(t, c, "kill:", "v", 3000)
	victim := tp.backends[1]
	victim.Kill()
	hits, errs, slowest, bad := readAllCopies(c, keys, "v")
	t.Logf("killed: %d/%d hits, %d errors, slowest multi-get %v", hits, len(keys), errs, slowest)
	if bad != nil || errs > 0 || hits*1000 < len(keys)*995 {
		t.Fatalf("after a kill: %d/%d hits, %d errors, %v", hits, len(keys), errs, bad)
	}
	victim.Restart(t)
	waitInRing(t, tp, victim.Addr, true)
	hits, errs, _, bad = readAllCopies(c, keys, "v")
	t.Logf("restarted empty: %d/%d hits, %d errors", hits, len(keys), errs)
	if bad != nil || errs > 0 || hits*1000 < len(keys)*995 {
		t.Fatalf("after it came back empty: %d/%d hits, %d errors, %v", hits, len(keys), errs, bad)
	}
}

// TestReplicasFreezeOneKeepsHits freezes one backend (SIGSTOP): reads of
// its keys cost one backend timeout until it is ejected, and then none;
// at least 99% hit. The slowest read is reported, not asserted.
func TestReplicasFreezeOneKeepsHits(t *testing.T) {
	tp := startReplicated(t, func(o *Options) { o.Timeout = 500 * time.Millisecond })
	c := newClient(t, tp.addr)
	c.Timeout = 5 * time.Second
	keys := fillReplicated(t, c, "freeze:", "v", 2500)
	victim := tp.backends[2]
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })
	var wg sync.WaitGroup
	var mu sync.Mutex
	var hits, errs int
	var slowest time.Duration
	const readers = 5
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, e, s, bad := readAllCopies(newClient(t, tp.addr), keys[g*len(keys)/readers:(g+1)*len(keys)/readers], "v")
			if bad != nil {
				t.Error(bad)
			}
			mu.Lock()
			hits, errs, slowest = hits+h, errs+e, max(slowest, s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("frozen: %d/%d hits, %d errors, slowest multi-get %v (backend timeout 500ms)", hits, len(keys), errs, slowest)
	if errs > 0 || hits*100 < len(keys)*99 {
		t.Fatalf("with a frozen copy: %d/%d hits, %d errors", hits, len(keys), errs)
	}
}

// TestReplicasNoStaleAfterReturn changes keys while one backend is away
// and checks that, once back, it serves none of its old values: killed
// and restarted empty, or frozen and thawed with its old data (which
// health.flush_on_readd empties; with it off this test fails).
func TestReplicasNoStaleAfterReturn(t *testing.T) {
	for _, how := range []string{"kill", "freeze"} {
		t.Run(how, func(t *testing.T) {
			tp := startReplicated(t, func(o *Options) { o.Timeout = 300 * time.Millisecond })
			c := newClient(t, tp.addr)
			keys := fillReplicated(t, c, how+":", "old", 600)
			victim := tp.backends[0]
			if how == "kill" {
				victim.Kill()
			} else {
				if err := victim.Freeze(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = victim.Thaw() })
			}
			waitInRing(t, tp, victim.Addr, false)
			// Overwrite half the keys and delete the other half; a change
			// that fails (before the ejection) is retried, as a client
			// told SERVER_ERROR would.
			for i, k := range keys {
				for try := 0; ; try++ {
					var err error
					if i%2 == 0 {
						err = c.Set(&memcache.Item{Key: k, Value: []byte("new" + k)})
					} else if err = c.Delete(k); errors.Is(err, memcache.ErrCacheMiss) {
						err = nil
					}
					if err == nil {
						break
					}
					if try == 20 {
						t.Fatalf("change %s: %v", k, err)
					}
				}
			}
			if how == "kill" {
				victim.Restart(t)
			} else if err := victim.Thaw(); err != nil {
				t.Fatal(err)
			}
			waitInRing(t, tp, victim.Addr, true)
			for i, k := range keys {
				it, err := c.Get(k)
				switch {
				case i%2 == 0 && (err != nil || string(it.Value) != "new"+k):
					t.Fatalf("overwritten %s: %v %v", k, it, err)
				case i%2 == 1 && !errors.Is(err, memcache.ErrCacheMiss):
					t.Fatalf("deleted %s came back: %v %v", k, it, err)
				}
			}
		})
	}
}

// TestReplicasWriteToFrozenCopyIsNotAcknowledged: a set whose second
// copy does not answer is not reported STORED, and the copy error is
// counted.
func TestReplicasWriteToFrozenCopyIsNotAcknowledged(t *testing.T) {
	tp := startReplicated(t, func(o *Options) {
		o.Timeout = 200 * time.Millisecond
		o.Health.AlwaysUp = true // keep the frozen backend in the ring
	})
	pt := tp.pool0()
	victim := tp.backends[1]
	var key string
	for i := range 1000 {
		k := fmt.Sprint("second:", i)
		idx := pt.place.AppendLocations(nil, []byte(k), 2)
		if pt.members[idx[1]].addr == victim.Addr {
			key = k
			break
		}
	}
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })
	got := memcachedtest.Send(t, tp.addr, "set "+key+" 0 0 1\r\nx\r\n", "\r\n", 1)
	if !strings.HasPrefix(got, "SERVER_ERROR") {
		t.Fatalf("set with a frozen copy: %q", got)
	}
	stats := parseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
	if stats["pool:default:copy_write_errors"] != "1" {
		t.Fatalf("copy_write_errors: %v", stats)
	}
}

// TestReplicasZonesAndReadOrder: with zones, the two copies of every key
// are in distinct zones, and reads go to the copy in the proxy's zone.
func TestReplicasZonesAndReadOrder(t *testing.T) {
	ss := startServers(t, 4)
	zones := []string{"a", "a", "b", "b"}
	tp := startProxyFor(t, ss, func(o *Options) {
		o.Replicas, o.Zone = 2, "b"
		for i := range o.Backends {
			o.Backends[i].Zone = zones[i]
		}
	})
	zoneOf := map[string]string{}
	for i, s := range ss {
		zoneOf[s.Addr] = zones[i]
	}
	c := newClient(t, tp.addr)
	keys := fillReplicated(t, c, "zone:", "v", 200)
	for _, k := range keys {
		got := holders(t, ss, k)
		if len(got) != 2 || zoneOf[got[0]] == zoneOf[got[1]] {
			t.Fatalf("key %s on %v: want two copies in two zones", k, got)
		}
	}
	before := map[string]int{}
	for _, s := range ss {
		before[s.Addr] = memcachedtest.Stat(t, s.Addr, "cmd_get")
	}
	// get and gat read the copy in the proxy's zone (gets, which
	// gomemcache sends, reads the deciding copy for its CAS).
	conn := memcachedtest.Dial(t, tp.addr)
	got := memcachedtest.RoundTrip(t, conn, "get "+strings.Join(keys[:50], " ")+"\r\n", "END\r\n", 1)
	if n := strings.Count(got, "VALUE "); n != 50 {
		t.Fatalf("multi-get: %d of 50 values", n)
	}
	for _, k := range keys {
		if got := memcachedtest.RoundTrip(t, conn, "get "+k+"\r\n", "END\r\n", 1); !strings.HasPrefix(got, "VALUE ") {
			t.Fatalf("get %s: %q", k, got)
		}
	}
	for _, s := range ss {
		if n := memcachedtest.Stat(t, s.Addr, "cmd_get") - before[s.Addr]; zoneOf[s.Addr] == "a" && n != 0 || zoneOf[s.Addr] == "b" && n == 0 {
			t.Fatalf("backend %s in the other zone served %d gets", s.Addr, n)
		}
	}
}

// TestReplicasDecidingCommands: the commands copies could disagree on are
// answered by the first copy, which decides, and leave the key on it
// alone; gets returns the deciding copy's CAS, which cas then accepts.
func TestReplicasDecidingCommands(t *testing.T) {
	tp := startReplicated(t, nil)
	c := newClient(t, tp.addr)
	if err := c.Set(&memcache.Item{Key: "k", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get("k") // gomemcache sends gets
	if err != nil {
		t.Fatal(err)
	}
	it.Value = []byte("b")
	if err := c.CompareAndSwap(it); err != nil {
		t.Fatalf("cas with the CAS gets returned: %v", err)
	}
	if got := holders(t, tp.backends, "k"); len(got) != 1 {
		t.Fatalf("after cas the key is on %v, want its deciding copy alone", got)
	}
	if err := c.Add(&memcache.Item{Key: "k", Value: []byte("c")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("add of a present key: %v", err)
	}
	if err := c.Append(&memcache.Item{Key: "k", Value: []byte("+")}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get("k"); err != nil || string(it.Value) != "b+" {
		t.Fatalf("after append: %v %v", it, err)
	}
	conn := memcachedtest.Dial(t, tp.addr)
	got := memcachedtest.RoundTrip(t, conn, "ms m 1\r\n5\r\nma m v\r\nmg m v\r\n", "\r\n6\r\n", 2)
	if got != "HD\r\nVA 1\r\n6\r\nVA 1\r\n6\r\n" {
		t.Fatalf("ms, ma, mg: %q", got)
	}
	if got := holders(t, tp.backends, "m"); len(got) != 1 {
		t.Fatalf("after ma the key is on %v, want its deciding copy alone", got)
	}
	got = memcachedtest.RoundTrip(t, conn, "ms m 1\r\n7\r\nmd m\r\nmg m v\r\n", "EN\r\n", 1)
	if got != "HD\r\nHD\r\nEN\r\n" {
		t.Fatalf("ms, md, mg: %q", got)
	}
	if got := holders(t, tp.backends, "m"); len(got) != 0 {
		t.Fatalf("after md the key is on %v", got)
	}
}

// TestReplicasReloadRaisesAndLowersCopies: replicas applies live. Raised
// from 1 to 2, keys written with one copy still hit (the first copy is
// their old home) and new writes go to two; lowered again, a change of a
// key within the invalidation window deletes the copy no longer used, so
// raising it once more serves nothing older.
func TestReplicasReloadRaisesAndLowersCopies(t *testing.T) {
	tp := startProxy(t, 3, nil)
	c := newClient(t, tp.addr)
	keys := fillReplicated(t, c, "reload:", "v", 100)
	reload := func(n int) {
		s := tp.Settings()
		s.Replicas = n
		if _, err := tp.Reconfigure(s); err != nil {
			t.Fatal(err)
		}
	}
	reload(2)
	if hits, errs, _, bad := readAllCopies(c, keys, "v"); hits != len(keys) || errs > 0 || bad != nil {
		t.Fatalf("after raising replicas: %d/%d hits, %d errors, %v", hits, len(keys), errs, bad)
	}
	if err := c.Set(&memcache.Item{Key: keys[0], Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if got := holders(t, tp.backends, keys[0]); len(got) != 2 {
		t.Fatalf("after raising replicas a set reached %v", got)
	}
	reload(1)
	if err := c.Set(&memcache.Item{Key: keys[0], Value: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	reload(2)
	if it, err := c.Get(keys[0]); err != nil || string(it.Value) != "one" {
		t.Fatalf("after lowering and raising replicas: %v %v", it, err)
	}
	if got := holders(t, tp.backends, keys[0]); len(got) != 1 {
		t.Fatalf("the copy no longer used was not deleted: on %v", got)
	}
}

// TestReplicasStandInCopiesAreCapped: while a backend is out, a key whose
// home copies include it gets a copy on a stand-in, whose expiry is
// capped at failover.ttl, while its live home copy keeps the client's.
func TestReplicasStandInCopiesAreCapped(t *testing.T) {
	tp := startReplicated(t, nil)
	victim := tp.backends[0]
	full := tp.pool0()
	home := func(k string) []string {
		var out []string
		for _, i := range full.place.AppendLocations(nil, []byte(k), 2) {
			out = append(out, full.members[i].addr)
		}
		return out
	}
	victim.Kill()
	waitInRing(t, tp, victim.Addr, false)
	c := newClient(t, tp.addr)
	checked := 0
	for i := 0; i < 200 && checked < 20; i++ {
		k := fmt.Sprint("cap:", i)
		if !slices.Contains(home(k), victim.Addr) {
			continue
		}
		if err := c.Set(&memcache.Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		for _, a := range holders(t, tp.backends[1:], k) {
			ttl := memcachedtest.Send(t, a, "mg "+k+" t\r\n", "\r\n", 1)
			switch standIn := !slices.Contains(home(k), a); {
			case standIn && (ttl == "HD t-1\r\n" || !strings.HasPrefix(ttl, "HD t")):
				t.Fatalf("key %s on stand-in %s: %q, want an expiry within failover.ttl", k, a, ttl)
			case !standIn && ttl != "HD t-1\r\n":
				t.Fatalf("key %s on its home copy %s: %q, want no expiry", k, a, ttl)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no key had the killed backend among its copies")
	}
	stats := parseStats(memcachedtest.Send(t, tp.addr, "stats\r\n", "END\r\n", 1))
	if stats["failover_capped_writes"] == "0" {
		t.Fatalf("failover_capped_writes: %v", stats["failover_capped_writes"])
	}
}
