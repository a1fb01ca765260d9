package proxy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// placement returns the name of the backend each key routes to.
func placement(t *poolTable, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = t.members[t.place.Locate([]byte(k))].name
	}
	return out
}

// member returns the ring member named name, nil if it is not in the ring.
func member(tp *testProxy, name string) *backend {
	for _, b := range tp.pool0().members {
		if b.name == name {
			return b
		}
	}
	return nil
}

// waitNameInRing waits until the backend named name is in the ring (or
// out of it) at addr.
func waitNameInRing(t *testing.T, tp *testProxy, name, addr string, want bool) {
	t.Helper()
	memcachedtest.WaitFor(t, fmt.Sprintf("backend %s at %s in ring to be %v", name, addr, want), func() bool {
		b := member(tp, name)
		return (b != nil && b.addr == addr) == want
	})
}

// localhostSpelling spells a 127.0.0.1 address with the host name.
func localhostSpelling(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return "localhost:" + port
}

// hasInfo reports whether mcproxy_backend_info{backend=name, addr=addr}
// is exported.
func hasInfo(t *testing.T, tp *testProxy, name, addr string) bool {
	t.Helper()
	for _, s := range gatherSeries(t, tp.Proxy, "mcproxy_backend_info") {
		if s.labels["backend"] == name && s.labels["addr"] == addr && s.value == 1 {
			return true
		}
	}
	return false
}

// TestRespelledBackendKeepsKeys: on a running proxy, a backend's address
// respelled (127.0.0.1:P -> localhost:P) under the same name, whether the
// name is given or is the old address, is the same backend: it stays in
// the ring, keeps its keys, its health state and its data (no flush). The
// code before names treated it as remove plus add: out of the ring until
// probed, then flushed, so the values set before were lost.
func TestRespelledBackendKeepsKeys(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			servers := []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
			list := func(addr0 string) []Backend {
				bs := []Backend{{Addr: addr0}, {Addr: servers[1].Addr}, {Addr: servers[2].Addr}}
				for i := range bs {
					bs[i].Name = servers[i].Addr // what an unnamed backend is called
					if named {
						bs[i].Name = "cache-" + strconv.Itoa(i)
					}
				}
				return bs
			}
			tp := startProxyFor(t, servers, func(o *Options) {
				o.Backends = list(servers[0].Addr)
				if !named {
					for i := range o.Backends {
						o.Backends[i].Name = ""
					}
				}
			})
			name0 := tp.backends[0].Addr
			if named {
				name0 = "cache-0"
			}
			keys := prefill(t, tp.addr, 600)
			before := tp.pool0()
			if share := ownedByName(before, keys, name0); share < 0.15 {
				t.Fatalf("backend 0 owns %.3f of the keys", share)
			}
			respelled := localhostSpelling(t, servers[0].Addr)
			res, err := tp.reconfigure(list(respelled), before.opts.Ring)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Readdressed, []string{name0}) || len(res.Added)+len(res.Removed)+len(res.Replaced) > 0 {
				t.Fatalf("reconfigure result: %+v", res)
			}
			// In the ring at once, at the new spelling, with every key where it was.
			after := tp.pool0()
			if b := member(tp, name0); b == nil || b.addr != respelled {
				t.Fatalf("respelled backend not in the ring at %s right after the reload", respelled)
			}
			if !slices.Equal(placement(before, keys), placement(after, keys)) {
				t.Fatal("keys moved when an address was respelled")
			}
			if share := hitShare(t, tp.addr, keys); share != 1 {
				t.Fatalf("%.3f of the keys hit after the respelling, want all: data lost", share)
			}
			// The respelled backend serves on its new connections.
			k := keyOn(t, tp, respelled, "respelled")
			c := memcachedtest.Dial(t, tp.addr)
			memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 1\r\nr\r\n", "STORED\r\n", 1)
			if got := memcachedtest.RoundTrip(t, memcachedtest.Dial(t, servers[0].Addr), "get "+k+"\r\n", "END\r\n", 1); got != "VALUE "+k+" 0 1\r\nr\r\nEND\r\n" {
				t.Fatalf("a key of the respelled backend is not on its server: %q", got)
			}
			st := memcachedtest.Stats(t, tp.addr, "backends")
			pre := "backend:" + name0 + ":"
			if st[pre+"addr"] != respelled || st[pre+"state"] != "up" || st[pre+"ejections"] != "0" || st[pre+"in_ring"] != "true" {
				t.Errorf("stats backends after the respelling: addr %q state %q ejections %q in_ring %q",
					st[pre+"addr"], st[pre+"state"], st[pre+"ejections"], st[pre+"in_ring"])
			}
			if n, _ := strconv.Atoi(st[pre+"requests"]); n < 100 {
				t.Errorf("request count restarted at the respelling: %d", n)
			}
			if !hasInfo(t, tp, name0, respelled) {
				t.Errorf("no mcproxy_backend_info{backend=%q,addr=%q}", name0, respelled)
			}
		})
	}
}

func ownedByName(t *poolTable, keys []string, name string) float64 {
	n := 0
	for _, p := range placement(t, keys) {
		if p == name {
			n++
		}
	}
	return float64(n) / float64(len(keys))
}

// TestNameMovedToAnotherServer: a name given a different server on reload
// keeps its ring place, but the new server takes the keys only once probes
// vouch for it, and flushed: until then its keys are on stand-ins.
func TestNameMovedToAnotherServer(t *testing.T) {
	servers := []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
	fresh := memcachedtest.Start(t)
	list := func(addr0 string) []Backend {
		return []Backend{{Name: "a", Addr: addr0}, {Name: "b", Addr: servers[1].Addr}, {Name: "c", Addr: servers[2].Addr}}
	}
	tp := startProxyFor(t, servers, func(o *Options) {
		o.Backends = list(servers[0].Addr)
		o.Health.Interval = 300 * time.Millisecond // time to look at the table before it joins
	})
	keys := prefill(t, tp.addr, 600)
	before := tp.pool0()
	// Something the new server holds from before: flush_on_readd empties it.
	memcachedtest.RoundTrip(t, memcachedtest.Dial(t, fresh.Addr), "set leftover 0 0 1\r\nx\r\n", "STORED\r\n", 1)

	res, err := tp.reconfigure(list(fresh.Addr), before.opts.Ring)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Replaced, []string{"a"}) || len(res.Readdressed) > 0 {
		t.Fatalf("reconfigure result: %+v", res)
	}
	if b := member(tp, "a"); b != nil {
		t.Fatalf("the new server of a is in the ring at %s before any probe", b.addr)
	}
	waitNameInRing(t, tp, "a", fresh.Addr, true)
	if !slices.Equal(placement(before, keys), placement(tp.pool0(), keys)) {
		t.Fatal("a's ring place changed with its server")
	}
	if got := memcachedtest.RoundTrip(t, memcachedtest.Dial(t, fresh.Addr), "get leftover\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("the new server joined without a flush: %q", got)
	}
	k := keyOn(t, tp, fresh.Addr, "moved")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set "+k+" 0 0 1\r\nm\r\n", "STORED\r\n", 1)
	if got := memcachedtest.RoundTrip(t, memcachedtest.Dial(t, fresh.Addr), "get "+k+"\r\n", "END\r\n", 1); got != "VALUE "+k+" 0 1\r\nm\r\nEND\r\n" {
		t.Fatalf("a's keys do not reach its new server: %q", got)
	}
	st := memcachedtest.Stats(t, tp.addr, "backends")
	if st["backend:a:addr"] != fresh.Addr || st["backend:a:ejections"] != "0" {
		t.Errorf("stats backends of a: addr %q ejections %q", st["backend:a:addr"], st["backend:a:ejections"])
	}
}

// TestDuplicateNamesRefused: two backends of one name are refused at start
// and on reload, naming the name; a name equal to another's address too.
func TestDuplicateNamesRefused(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	_, err := New(Options{Backends: []Backend{{Name: "x", Addr: a.Addr}, {Name: "x", Addr: b.Addr}}})
	if err == nil || !strings.Contains(err.Error(), "backend name x listed twice") {
		t.Fatalf("New with a name twice: %v", err)
	}
	tp := startProxyFor(t, []*memcachedtest.Server{a, b}, nil)
	memcachedtest.RoundTrip(t, memcachedtest.Dial(t, tp.addr), "version\r\n", "\r\n", 1) // serving before the cleanup shuts it down
	for _, bs := range [][]Backend{
		{{Name: "x", Addr: a.Addr}, {Name: "x", Addr: b.Addr}},
		{{Addr: a.Addr}, {Name: a.Addr, Addr: b.Addr}},
	} {
		if _, err := tp.reconfigure(bs, tp.pool0().opts.Ring); err == nil || !strings.Contains(err.Error(), "listed twice") {
			t.Errorf("Reconfigure(%+v): %v", bs, err)
		}
	}
}
