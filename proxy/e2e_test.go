package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/protocol"
)

// TestGomemcacheEveryCommand drives every command gomemcache offers through
// the proxy and checks the answers a memcached client relies on.
func TestGomemcacheEveryCommand(t *testing.T) {
	tp := startProxy(t, 3, nil)
	mc := newClient(t, tp.addr)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(mc.Ping())
	must(mc.Set(&memcache.Item{Key: "a", Value: []byte("1"), Flags: 42}))
	it, err := mc.Get("a")
	must(err)
	if string(it.Value) != "1" || it.Flags != 42 {
		t.Fatalf("get a: %+v", it)
	}
	if err := mc.Add(&memcache.Item{Key: "a", Value: []byte("2")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("add existing: %v", err)
	}
	must(mc.Add(&memcache.Item{Key: "b", Value: []byte("2")}))
	must(mc.Replace(&memcache.Item{Key: "b", Value: []byte("3")}))
	if err := mc.Replace(&memcache.Item{Key: "nope", Value: []byte("3")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("replace missing: %v", err)
	}
	must(mc.Append(&memcache.Item{Key: "b", Value: []byte("z")}))
	must(mc.Prepend(&memcache.Item{Key: "b", Value: []byte("a")}))
	if it, _ := mc.Get("b"); it == nil || string(it.Value) != "a3z" {
		t.Fatalf("append/prepend: %+v", it)
	}
	it, err = mc.Get("b")
	must(err)
	it.Value = []byte("cas1")
	must(mc.CompareAndSwap(it))
	it.Value = []byte("cas2")
	if err := mc.CompareAndSwap(it); !errors.Is(err, memcache.ErrCASConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	must(mc.Set(&memcache.Item{Key: "n", Value: []byte("10")}))
	if v, err := mc.Increment("n", 5); err != nil || v != 15 {
		t.Fatalf("incr: %d %v", v, err)
	}
	if v, err := mc.Decrement("n", 20); err != nil || v != 0 {
		t.Fatalf("decr below zero: %d %v", v, err)
	}
	if _, err := mc.Increment("missing", 1); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("incr missing: %v", err)
	}
	must(mc.Touch("a", 100))
	if err := mc.Touch("missing", 1); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("touch missing: %v", err)
	}
	if it, err := mc.GetAndTouch("a", 100); err != nil || string(it.Value) != "1" {
		t.Fatalf("gat: %+v %v", it, err)
	}
	must(mc.Delete("a"))
	if err := mc.Delete("a"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("delete twice: %v", err)
	}

	// Multi-get across all backends: 300 keys land on all three.
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("multi:%d", i)
		must(mc.Set(&memcache.Item{Key: keys[i], Value: []byte("v" + strconv.Itoa(i))}))
	}
	got, err := mc.GetMulti(append(keys, "absent1", "absent2"))
	must(err)
	if len(got) != len(keys) {
		t.Fatalf("GetMulti returned %d of %d", len(got), len(keys))
	}
	for i, k := range keys {
		if string(got[k].Value) != "v"+strconv.Itoa(i) {
			t.Fatalf("GetMulti %s = %q", k, got[k].Value)
		}
	}
	for _, s := range tp.backends {
		items := memcachedtest.Stat(t, s.Addr, "curr_items")
		if items < 50 {
			t.Errorf("backend %s holds %d items of 300: keys are not spread", s.Addr, items)
		}
	}

	must(mc.DeleteAll()) // flush_all to every backend
	if _, err := mc.Get(keys[0]); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("after flush_all: %v", err)
	}
	must(mc.FlushAll())
}

// TestPipelinedRepliesInOrder sends a thousand commands in one write; the
// replies must come back in the order sent even though they travel over
// different backends.
func TestPipelinedRepliesInOrder(t *testing.T) {
	tp := startProxy(t, 3, nil)
	c := memcachedtest.Dial(t, tp.addr)
	var in, want bytes.Buffer
	for i := 0; i < 1000; i++ {
		k := "pipe:" + strconv.Itoa(i)
		v := strconv.Itoa(i * 7)
		fmt.Fprintf(&in, "set %s 0 0 %d\r\n%s\r\nget %s\r\nincr %s 1\r\n", k, len(v), v, k, k)
		fmt.Fprintf(&want, "STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n%d\r\n", k, len(v), v, i*7+1)
	}
	in.WriteString("get pipe:0 pipe:999 pipe:500\r\n")
	want.WriteString("VALUE pipe:0 0 1\r\n1\r\nVALUE pipe:999 0 4\r\n6994\r\nVALUE pipe:500 0 4\r\n3501\r\nEND\r\n")
	got := memcachedtest.RoundTrip(t, c, in.String(), "VALUE pipe:500 0 4\r\n3501\r\nEND\r\n", 1)
	if got != want.String() {
		t.Fatalf("pipelined replies differ (got %d bytes, want %d)", len(got), want.Len())
	}
}

// TestConcurrentClients runs many clients at once over the shared backend
// connections; every client must read its own writes.
func TestConcurrentClients(t *testing.T) {
	tp := startProxy(t, 3, nil)
	const clients, ops = 16, 300
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			mc := memcache.New(tp.addr)
			mc.Timeout = 3 * time.Second
			defer mc.Close()
			rnd := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < ops; i++ {
				k := fmt.Sprintf("c%d:%d", g, rnd.Intn(50))
				v := []byte(strconv.Itoa(rnd.Int()))
				if err := mc.Set(&memcache.Item{Key: k, Value: v}); err != nil {
					errs <- fmt.Errorf("client %d set: %w", g, err)
					return
				}
				it, err := mc.Get(k)
				if err != nil || !bytes.Equal(it.Value, v) {
					errs <- fmt.Errorf("client %d get %s: %v (%v)", g, k, it, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStatsCounts checks the proxy's own counters after a known sequence.
func TestStatsCounts(t *testing.T) {
	tp := startProxy(t, 3, nil)
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n", "STORED\r\nSTORED\r\n", 1)
	memcachedtest.RoundTrip(t, c, "get a b c\r\n", "END\r\n", 1)
	memcachedtest.RoundTrip(t, c, "get a\r\n", "END\r\n", 1)
	memcachedtest.RoundTrip(t, c, "touch a 10\r\n", "TOUCHED\r\n", 1)
	memcachedtest.RoundTrip(t, c, "delete zz\r\n", "NOT_FOUND\r\n", 1)
	stats := parseStats(memcachedtest.RoundTrip(t, c, "stats\r\n", "END\r\n", 1))
	want := map[string]string{
		"cmd_get": "4", "get_hits": "3", "get_misses": "1", "cmd_set": "2",
		"cmd_touch": "1", "touch_hits": "1", "delete_misses": "1",
		"curr_items": "2", "backends": "3", "live_backends": "3", "version": "1.6.0-mcproxy-test", // as "version" answers
		"curr_connections": "1", "total_connections": "1",
	}
	for k, v := range want {
		if stats[k] != v {
			t.Errorf("stat %s = %q, want %q", k, stats[k], v)
		}
	}
	for _, k := range []string{"pid", "uptime", "time", "bytes", "limit_maxbytes", "evictions", "bytes_read", "bytes_written"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stat %s missing", k)
		}
	}
	if n, _ := strconv.Atoi(stats["limit_maxbytes"]); n != 3*64<<20 {
		t.Errorf("limit_maxbytes %d: want the sum over three 64 MiB backends", n)
	}
	be := memcachedtest.RoundTrip(t, c, "stats backends\r\n", "END\r\n", 1)
	for _, s := range tp.backends {
		if !strings.Contains(be, "STAT backend:"+s.Addr+":state up\r\n") {
			t.Errorf("stats backends lacks %s:\n%s", s.Addr, be)
		}
	}
	if got := memcachedtest.RoundTrip(t, c, "stats reset\r\n", "\r\n", 1); got != "RESET\r\n" {
		t.Errorf("stats reset: %q", got)
	}
	if got := parseStats(memcachedtest.RoundTrip(t, c, "stats\r\n", "END\r\n", 1)); got["cmd_get"] != "0" {
		t.Errorf("cmd_get after reset = %q", got["cmd_get"])
	}
	if got := memcachedtest.RoundTrip(t, c, "stats nonsense\r\n", "\r\n", 1); got != "ERROR\r\n" {
		t.Errorf("unknown stats group: %q", got)
	}
	if got := memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1); got != "VERSION 1.6.0-mcproxy-test\r\n" {
		t.Errorf("version: %q", got)
	}
}

// TestControlCharactersInKeysRefused documents a deliberate difference from
// memcached's parser, which only splits on spaces: protocol.txt forbids
// control characters in keys and the proxy enforces it.
func TestControlCharactersInKeysRefused(t *testing.T) {
	tp := startProxy(t, 1, nil)
	c := memcachedtest.Dial(t, tp.addr)
	if got := memcachedtest.RoundTrip(t, c, "get a\tb\r\n", "\r\n", 1); got != "CLIENT_ERROR bad command line format\r\n" {
		t.Fatalf("got %q", got)
	}
	if got := memcachedtest.RoundTrip(t, c, "get ok\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("connection out of step after refusal: %q", got)
	}
}

// TestMaxConnections refuses clients over the limit as memcached does.
func TestMaxConnections(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) { o.MaxConnections = 2 })
	a, b := memcachedtest.Dial(t, tp.addr), memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, a, "get x\r\n", "END\r\n", 1)
	memcachedtest.RoundTrip(t, b, "get x\r\n", "END\r\n", 1)
	c := memcachedtest.Dial(t, tp.addr)
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	buf := make([]byte, 100)
	n, _ := c.Read(buf)
	if string(buf[:n]) != tooManyConnections {
		t.Fatalf("third connection got %q", buf[:n])
	}
	stats := parseStats(memcachedtest.RoundTrip(t, a, "stats\r\n", "END\r\n", 1))
	if stats["rejected_connections"] != "1" {
		t.Fatalf("rejected_connections = %q", stats["rejected_connections"])
	}
}

// TestClientIdleTimeout closes a client that sends nothing.
func TestClientIdleTimeout(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) { o.ClientIdleTimeout = 100 * time.Millisecond })
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "get x\r\n", "END\r\n", 1)
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatalf("idle connection still open, read %d bytes", n)
	} else if isTimeout(err) {
		t.Fatalf("idle connection not closed within %v", exchangeBound)
	}
}

// TestLineTooLongClosesConnection: a line with no end in sight is refused.
func TestLineTooLongClosesConnection(t *testing.T) {
	tp := startProxy(t, 1, nil)
	got := exchange(t, tp.addr, []byte("set "+strings.Repeat("k", 20000)))
	if string(got) != "CLIENT_ERROR line too long\r\n" {
		t.Fatalf("got %q", got)
	}
}

// TestSlowReaderBounded: a client that sends gets of a large value without
// reading makes the proxy stop reading from it once the reply memory held
// for it reaches the output limit; what is held stays within the limit plus
// the window of replies already on their way; when the client reads, every
// reply arrives, and the memory is released.
func TestSlowReaderBounded(t *testing.T) {
	const limit = 4 << 20
	tp := startProxy(t, 1, func(o *Options) { o.ClientOutputLimit = limit })
	value := strings.Repeat("v", 512<<10)
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(value), value), "STORED\r\n", 1)
	const n = 200 // 100 MiB of replies if nothing held the proxy back
	stats := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, stats, "stats reset\r\n", "RESET\r\n", 1)
	// All commands at once: they fit in the socket buffers, and the proxy
	// must bound itself however many commands one read happens to see.
	if _, err := c.Write([]byte(strings.Repeat("get big\r\n", n))); err != nil {
		t.Fatal(err)
	}
	s := sessionOf(t, tp, c)
	memcachedtest.WaitFor(t, "the proxy to stop reading the client", func() bool { return parked(s) })
	held := s.held.Load()
	read := parseStats(memcachedtest.RoundTrip(t, stats, "stats\r\n", "END\r\n", 1))["cmd_get"]
	t.Logf("the proxy read %s of %d gets and holds %d reply bytes for a client that does not read", read, n, held)
	if read == strconv.Itoa(n) {
		t.Errorf("the proxy read all %d commands of a client that does not read", n)
	}
	if bound := heldBound(s, len(value)); held > bound {
		t.Errorf("%d reply bytes held for a slow client, bound %d", held, bound)
	}
	// Now read: every reply arrives, in full.
	want := fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(value), value)
	readExactly(t, c, []byte(strings.Repeat(want, n)))
	memcachedtest.WaitFor(t, "the held bytes to be released", func() bool { return s.held.Load() == 0 })
}

// TestLongGatSplit: memcached closes a connection on a gat line over 2048
// bytes that arrives in pieces, so the proxy splits long gat/gats lines
// into several commands, each within protocol.MaxGatLine, and merges the
// replies in the client's key order.
func TestLongGatSplit(t *testing.T) {
	tp := startProxy(t, 1, nil)
	c := memcachedtest.Dial(t, tp.addr)
	var keys []string
	for i := 0; i < 300; i++ {
		keys = append(keys, fmt.Sprintf("gatkey-%022d", i))
	}
	var want strings.Builder
	for _, i := range []int{0, 5, 77, 150, 151, 299} {
		memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 3\r\nv%02d\r\n", keys[i], i%100), "STORED\r\n", 1)
	}
	b := tp.pool0().all[0]
	for _, op := range []string{"gat", "gats"} {
		want.Reset()
		for _, i := range []int{0, 5, 77, 150, 151, 299} {
			fmt.Fprintf(&want, "VALUE %s 0 3", keys[i])
			if op == "gats" {
				want.WriteString(" <cas>")
			}
			fmt.Fprintf(&want, "\r\nv%02d\r\n", i%100)
		}
		want.WriteString("END\r\n")
		before := b.requests()
		line := op + " 1000 " + strings.Join(keys, " ") + "\r\n"
		got := maskCas([]byte(memcachedtest.RoundTrip(t, c, line, "END\r\n", 1)))
		if string(got) != want.String() {
			t.Fatalf("%s of 300 keys:\n got %q\nwant %q", op, got, want.String())
		}
		sent := b.requests() - before
		if minimum := uint64(len(line)/protocol.MaxGatLine + 1); sent < minimum {
			t.Fatalf("a %d-byte %s line went as %d commands, want at least %d", len(line), op, sent, minimum)
		}
	}
	// Short gat lines are not split.
	before := b.requests()
	memcachedtest.RoundTrip(t, c, "gat 10 "+keys[0]+" "+keys[1]+"\r\n", "END\r\n", 1)
	if sent := b.requests() - before; sent != 1 {
		t.Fatalf("a short gat went as %d commands", sent)
	}
}

// TestClientIdleTimeoutAfterPause: a client held back by its output limit
// is not idle while it is waited for, and once it has read its replies and
// gone quiet, the idle timeout still closes it.
func TestClientIdleTimeoutAfterPause(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) {
		o.ClientIdleTimeout = 300 * time.Millisecond
		o.ClientOutputLimit = 1 << 20
	})
	value := strings.Repeat("p", 512<<10)
	c := memcachedtest.Dial(t, tp.addr)
	s := sessionOf(t, tp, c)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(value), value), "STORED\r\n", 1)
	const n = 20
	if _, err := c.Write([]byte(strings.Repeat("get big\r\n", n))); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the proxy to hold the client back", func() bool { return parked(s) })
	want := strings.Repeat(fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(value), value), n)
	_ = c.SetReadDeadline(time.Now().Add(exchangeBound))
	got, err := io.ReadAll(io.LimitReader(c, int64(len(want))))
	if string(got) != want {
		t.Fatalf("read %d of %d reply bytes: %v", len(got), len(want), err)
	}
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatalf("idle connection still open, read %d bytes", n)
	} else if isTimeout(err) {
		t.Fatalf("idle connection not closed within %v after its replies", exchangeBound)
	}
}

// TestSessionsSpreadOverConnections: with several connections from each
// loop to a backend, the clients of every loop use all of them.
func TestSessionsSpreadOverConnections(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) { o.EventLoops, o.Connections = 2, 2 })
	for i := range 8 {
		c := memcachedtest.Dial(t, tp.addr)
		memcachedtest.RoundTrip(t, c, fmt.Sprintf("get spread%d\r\n", i), "END\r\n", 1)
	}
	b := tp.pool0().all[0]
	if len(b.conns) != 4 {
		t.Fatalf("%d connections to the backend, want 2 loops x 2", len(b.conns))
	}
	for i, c := range b.conns {
		if c.requests.Load() == 0 {
			t.Errorf("connection %d (loop %d) carried no request", i, c.l.id)
		}
	}
}
