package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/ring"
)

// startWarmMigration starts a proxy serving pool old alone, fills it with
// n keys "w:<i>" = "0", then moves the default route to pool new with
// warm_from old. It returns the proxy and the two pools' servers.
func startWarmMigration(t *testing.T, n int) (tp *testProxy, oldSS, newSS []*memcachedtest.Server) {
	ss := startServers(t, 4)
	oldSS, newSS = ss[:2], ss[2:]
	old := poolOf("old", oldSS, ring.PlacementOptions{Distribution: ring.DistModula, Hash: ring.HashCRC32a})
	nw := poolOf("new", newSS, ring.PlacementOptions{})
	tp = startProxyFor(t, ss, func(o *Options) {
		o.Backends, o.Pools, o.Routes = nil, []Pool{old}, nil
	})
	c := memcache.New(tp.addr)
	for i := range n {
		if err := c.Set(&memcache.Item{Key: fmt.Sprintf("w:%d", i), Value: []byte("0"), Flags: 7}); err != nil {
			t.Fatal(err)
		}
	}
	s := tp.Settings()
	s.Pools = []Pool{old, nw}
	s.Routes = []Route{{Pool: "new", WarmFrom: "old"}}
	if _, err := tp.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the new pool to serve the default route", func() bool {
		return tp.table.Load().defaultPool() == "new"
	})
	return tp, oldSS, newSS
}

func TestWarmUpReadsHitAndFillTheNewPool(t *testing.T) {
	const n = 300
	tp, _, newSS := startWarmMigration(t, n)
	c := memcache.New(tp.addr)
	for i := 0; i < n; i += 10 {
		keys := make([]string, 0, 10)
		for j := i; j < i+10; j++ {
			keys = append(keys, fmt.Sprintf("w:%d", j))
		}
		var got map[string]*memcache.Item
		var err error
		if i%20 == 0 {
			got, err = c.GetMulti(keys)
		} else {
			got = map[string]*memcache.Item{}
			for _, k := range keys {
				it, gerr := c.Get(k)
				if gerr != nil {
					err = gerr
					break
				}
				got[k] = it
			}
		}
		if err != nil {
			t.Fatalf("first read of %v: %v", keys, err)
		}
		for _, k := range keys {
			if it := got[k]; it == nil || string(it.Value) != "0" || it.Flags != 7 {
				t.Fatalf("first read of %s: %+v, want the old value", k, it)
			}
		}
	}
	memcachedtest.WaitFor(t, "every key copied into the new pool", func() bool {
		st := memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
		return st["pool:new:warm_copies"] == strconv.Itoa(n)
	})
	for i := range n {
		k := fmt.Sprintf("w:%d", i)
		if h := holders(t, newSS, k); len(h) != 1 {
			t.Fatalf("%s is on %v of the new pool, want one", k, h)
		}
	}
	st := memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
	if st["pool:new:warm_hits"] != strconv.Itoa(n) || st["route:0:warm_from"] != "old" {
		t.Fatalf("stats pools: %v", st)
	}
	// The copies serve now: a second read makes no warm hit.
	if _, err := c.Get("w:1"); err != nil {
		t.Fatal(err)
	}
	st = memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
	if st["pool:new:warm_hits"] != strconv.Itoa(n) {
		t.Fatalf("a read of a copied key went to the old pool: %v", st["pool:new:warm_hits"])
	}
	// mg reads through too, text writes delete the old copy first.
	if r := memcachedtest.Send(t, tp.addr, "set w:x 0 0 1\r\nx\r\nmg w:x v\r\n", "VA 1\r\nx\r\n", 1); !strings.HasPrefix(r, "STORED\r\nVA 1") {
		t.Fatalf("set then mg: %q", r)
	}
}

// TestWarmUpNeverServesAStaleValue runs writers, deleters and readers on
// shared keys during a warm-up: no read returns a value older than the last
// write or delete acknowledged before the read began.
func TestWarmUpNeverServesAStaleValue(t *testing.T) {
	const n, writers, readers, opsPerWriter = 60, 3, 3, 400
	tp, _, _ := startWarmMigration(t, n)
	// floor[k] is the oldest version a read of k may return: the last
	// version acknowledged stored, or one past it after a delete.
	var floor [n]atomic.Int64
	var stale atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := memcache.New(tp.addr)
			rng := rand.New(rand.NewSource(int64(w)))
			version := int64(0)
			for i := 0; i < opsPerWriter; i++ {
				k := w + writers*rng.Intn(n/writers) // each writer owns its keys
				version++
				key := fmt.Sprintf("w:%d", k)
				var err error
				if rng.Intn(3) == 0 {
					err = c.Delete(key)
					if err == nil || errors.Is(err, memcache.ErrCacheMiss) {
						err = nil
						floor[k].Store(version * 1000) // nothing older may come back
					}
				} else {
					v := version*1000 + int64(k)
					err = c.Set(&memcache.Item{Key: key, Value: []byte(strconv.FormatInt(v, 10))})
					if err == nil {
						floor[k].Store(v)
					}
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("writer %d: %s: %v", w, key, err)
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			c := memcache.New(tp.addr)
			rng := rand.New(rand.NewSource(int64(100 + r)))
			for reads := 0; reads < 100000; reads++ {
				select {
				case <-done:
					return
				default:
				}
				k := rng.Intn(n)
				min := floor[k].Load()
				it, err := c.Get(fmt.Sprintf("w:%d", k))
				if errors.Is(err, memcache.ErrCacheMiss) {
					continue
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("reader: %v", err)
					return
				}
				if v, _ := strconv.ParseInt(string(it.Value), 10, 64); v < min {
					stale.Add(1)
					t.Errorf("w:%d read %d after %d was acknowledged", k, v, min)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rwg.Wait()
	if stale.Load() > 0 || failures.Load() > 0 {
		t.Fatalf("%d stale reads, %d failed commands", stale.Load(), failures.Load())
	}
	// Once quiet, every key reads its final state.
	c := memcache.New(tp.addr)
	for k := range n {
		it, err := c.Get(fmt.Sprintf("w:%d", k))
		if errors.Is(err, memcache.ErrCacheMiss) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := strconv.ParseInt(string(it.Value), 10, 64); v < floor[k].Load() {
			t.Fatalf("w:%d reads %d after the writers stopped at %d", k, v, floor[k].Load())
		}
	}
}

// holdingRelay stands between the proxy and a real memcached and holds the
// first "ms ... ME" (an add in meta form: a warm-up copy) until release is
// closed, while its other connections go on. held is closed when it holds.
type holdingRelay struct {
	addr          string
	held, release chan struct{}
	once          sync.Once
}

func startHoldingRelay(t *testing.T, upstream string) *holdingRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdingRelay{addr: l.Addr().String(), held: make(chan struct{}), release: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(up)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(c, up) }()
			go func() { defer wg.Done(); h.forward(c, up) }()
		}
	}()
	t.Cleanup(func() {
		h.once.Do(func() { close(h.release) })
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return h
}

// forward copies the proxy's commands to memcached line by line, holding
// the first warm-up copy.
func (h *holdingRelay) forward(c, up net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "ms ") && strings.Contains(line, " ME") {
			select {
			case <-h.held:
			default:
				close(h.held)
				<-h.release
			}
		}
		if _, err := up.Write([]byte(line)); err != nil {
			return
		}
	}
}

// TestWarmCopyThatLosesARaceIsUndone: a copy that reaches the new pool
// after a delete was acknowledged there is deleted again, because the old
// copy it was made from is gone by then.
func TestWarmCopyThatLosesARaceIsUndone(t *testing.T) {
	oldSrv, newSrv := memcachedtest.Start(t), memcachedtest.Start(t)
	relay := startHoldingRelay(t, newSrv.Addr)
	old := Pool{Name: "old", Backends: []Backend{{Addr: oldSrv.Addr}}}
	nw := Pool{Name: "new", Backends: []Backend{{Addr: relay.addr}}}
	tp := startProxyFor(t, nil, func(o *Options) {
		o.Backends, o.Pools, o.Routes = nil, []Pool{old}, nil
		o.EventLoops, o.Connections = 1, 2 // two sessions in a row use two connections
	})
	memcachedtest.Send(t, tp.addr, "set k 0 0 2\r\nv0\r\n", "STORED\r\n", 1)
	s := tp.Settings()
	s.Pools, s.Routes = []Pool{old, nw}, []Route{{Pool: "new", WarmFrom: "old"}}
	if _, err := tp.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the new pool to serve", func() bool { return tp.table.Load().defaultPool() == "new" })

	reader := memcachedtest.Dial(t, tp.addr)
	defer reader.Close()
	deleter := memcachedtest.Dial(t, tp.addr)
	defer deleter.Close()
	if got := memcachedtest.RoundTrip(t, reader, "get k\r\n", "END\r\n", 1); got != "VALUE k 0 2\r\nv0\r\nEND\r\n" {
		t.Fatalf("warm read: %q", got)
	}
	select {
	case <-relay.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the copy never reached the new pool")
	}
	// The delete is acknowledged while the copy is on its way.
	if got := memcachedtest.RoundTrip(t, deleter, "delete k\r\n", "\r\n", 1); got != "NOT_FOUND\r\n" && got != "DELETED\r\n" {
		t.Fatalf("delete: %q", got)
	}
	close(relay.release)
	relay.once.Do(func() {})
	memcachedtest.WaitFor(t, "the late copy to be undone", func() bool {
		st := memcachedtest.ParseStats(memcachedtest.Send(t, tp.addr, "stats pools\r\n", "END\r\n", 1))
		return st["pool:new:warm_copy_errors"] == "1"
	})
	if got := memcachedtest.RoundTrip(t, deleter, "get k\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("read after an acknowledged delete: %q", got)
	}
}

// TestWarmUpInPlace: old and new pools over the same servers. A key that
// both placements put on one server is not deleted before its change (an
// incr goes on counting), and keys that move are read from where they were.
func TestWarmUpInPlace(t *testing.T) {
	ss := startServers(t, 3)
	old := poolOf("old", ss, ring.PlacementOptions{Distribution: ring.DistModula, Hash: ring.HashCRC32a})
	nw := poolOf("new", ss, ring.PlacementOptions{})
	tp := startProxyFor(t, ss, func(o *Options) { o.Backends, o.Pools, o.Routes = nil, []Pool{old}, nil })
	c := memcache.New(tp.addr)
	const n = 200
	for i := range n {
		if err := c.Set(&memcache.Item{Key: fmt.Sprintf("n:%d", i), Value: []byte("10")}); err != nil {
			t.Fatal(err)
		}
	}
	s := tp.Settings()
	s.Pools, s.Routes = []Pool{old, nw}, []Route{{Pool: "new", WarmFrom: "old"}}
	if _, err := tp.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the new pool to serve", func() bool { return tp.table.Load().defaultPool() == "new" })
	tab := tp.table.Load()
	stayed, moved := 0, 0
	for i := range n {
		k := []byte(fmt.Sprintf("n:%d", i))
		if tab.pools[0].locate(k) == tab.pools[1].locate(k) {
			stayed++
			v, err := c.Increment(string(k), 1)
			if err != nil || v != 11 {
				t.Fatalf("incr %s, which did not move: %d, %v", k, v, err)
			}
			continue
		}
		moved++
		if it, err := c.Get(string(k)); err != nil || string(it.Value) != "10" {
			t.Fatalf("first read of %s, which moved: %v", k, err)
		}
	}
	if stayed == 0 || moved == 0 {
		t.Fatalf("%d keys stayed and %d moved: the case needs both", stayed, moved)
	}
}
