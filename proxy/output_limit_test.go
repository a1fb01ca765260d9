package proxy

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// nothingInFlight reports whether every request of s has its reply, so
// that nothing changes until the client reads. It asks s's loop.
func nothingInFlight(s *session) bool {
	ok := true
	s.l.call(func() {
		for r := s.head; r != nil; r = r.next {
			ok = ok && r.done
		}
	})
	return ok
}

// heldBound is the most reply memory the output limit lets the proxy hold
// for a client whose replies are values of valueLen bytes: the soft limit,
// plus a window of values that were on their way when it was reached.
func heldBound(s *session, valueLen int) int64 {
	return s.softLimit + int64(s.window)*int64(protocol.MaxReplyCapacity(valueLen+valueOverhead))
}

// roundTrips makes n set/get round trips on a fresh client and returns when
// every one has been answered correctly.
func roundTrips(t *testing.T, addr string, n int) {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	for i := 0; i < n; i++ {
		k, v := "other:"+strconv.Itoa(i%10), strconv.Itoa(i)
		memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v), "STORED\r\n", 1)
		want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)
		if got := memcachedtest.RoundTrip(t, c, "get "+k+"\r\n", "END\r\n", 1); got != want {
			t.Fatalf("round trip %d: got %q, want %q", i, got, want)
		}
	}
}

// TestSlowReaderDoesNotStallOthers: while one client that pipelines gets of
// large values without reading is stalled by its output limit, another
// client on the same backend connection keeps being answered, and the slow
// one is neither disconnected nor given more than its bound.
func TestSlowReaderDoesNotStallOthers(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) {
		o.Connections = 1 // both clients share the one backend connection
		o.ClientOutputLimit = 1 << 20
	})
	value := strings.Repeat("s", 256<<10)
	slow := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, slow, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(value), value), "STORED\r\n", 1)
	const n = 400 // 100 MiB of replies
	if _, err := slow.Write([]byte(strings.Repeat("get big\r\n", n))); err != nil {
		t.Fatal(err)
	}
	s := sessionOf(t, tp, slow)
	memcachedtest.WaitFor(t, "the proxy to stop reading the slow client", func() bool { return parked(s) })

	roundTrips(t, tp.addr, 200)

	if held, bound := s.held.Load(), heldBound(s, len(value)); held > bound {
		t.Errorf("%d reply bytes held for the slow client, bound %d", held, bound)
	}
	if s.cut.Load() {
		t.Fatal("the slow client was disconnected; the window should keep it under the hard limit")
	}
	want := []byte(strings.Repeat(fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(value), value), n))
	readExactly(t, slow, want)
	memcachedtest.WaitFor(t, "the held bytes to be released", func() bool { return s.held.Load() == 0 })
}

// TestOutputLimitDisconnect: items larger than max_item_size (stored on the
// backend directly) can take a client that does not read past the hard
// limit; it is disconnected, counted and logged, the rest of its replies
// are dropped as they arrive, and the backend connection stays in step.
func TestOutputLimitDisconnect(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	tp := startProxy(t, 1, func(o *Options) {
		o.Connections = 1
		o.ClientOutputLimit = 1 << 20 // hard limit 2 MiB
		o.MaxItemSize = 64 << 10      // a window of 15 keys
		o.Logger = zap.New(core)
	})
	value := strings.Repeat("h", 512<<10)
	direct := memcachedtest.Dial(t, tp.backends[0].Addr)
	memcachedtest.RoundTrip(t, direct, fmt.Sprintf("set huge 0 0 %d\r\n%s\r\nset small 0 0 2\r\nok\r\n", len(value), value), "STORED\r\nSTORED\r\n", 1)

	c := memcachedtest.Dial(t, tp.addr)
	// The session is looked up before the gets are sent: once cut off it
	// ends, and may be gone before a lookup after them.
	s := sessionOf(t, tp, c)
	if _, err := c.Write([]byte(strings.Repeat("get huge\r\n", 100))); err != nil {
		t.Fatal(err)
	}
	// Nothing is read until the proxy has cut the client off: a client
	// that reads would keep itself under the limit.
	memcachedtest.WaitFor(t, "the client over its hard output limit to be cut off", s.cut.Load)
	// Then the connection is closed: reading ends in EOF or a reset after
	// what the proxy had written before.
	buf := make([]byte, 256<<10)
	_ = c.SetReadDeadline(time.Now().Add(memcachedtest.WaitBound))
	for {
		if _, err := c.Read(buf); err != nil {
			if isTimeout(err) {
				t.Fatal("the client cut off for its output limit is still connected")
			}
			break
		}
	}
	stats := memcachedtest.Dial(t, tp.addr)
	memcachedtest.WaitFor(t, "the disconnect to be counted", func() bool {
		return parseStats(memcachedtest.RoundTrip(t, stats, "stats\r\n", "END\r\n", 1))["output_limit_disconnects"] == "1"
	})
	memcachedtest.WaitFor(t, "the session to end and log", func() bool {
		return logs.FilterMessageSnippet("hard output limit").Len() == 1
	})
	if e := logs.FilterMessageSnippet("hard output limit").All()[0]; e.ContextMap()["client"] != c.LocalAddr().String() {
		t.Errorf("log names client %v, want %s", e.ContextMap()["client"], c.LocalAddr())
	}
	if held := s.held.Load(); held != 0 {
		t.Errorf("%d bytes still charged to a finished session", held)
	}
	// The shared connection was kept in step through the dropped replies:
	// another client gets every answer right, the huge value included, and
	// the backend connection was never reset.
	roundTrips(t, tp.addr, 20)
	want := fmt.Sprintf("VALUE huge 0 %d\r\n%s\r\nEND\r\n", len(value), value)
	if got := memcachedtest.RoundTrip(t, stats, "get huge\r\n", "END\r\n", 1); got != want {
		t.Fatalf("get huge after the disconnect: %d bytes, want %d", len(got), len(want))
	}
	st := parseStats(memcachedtest.RoundTrip(t, stats, "stats\r\n", "END\r\n", 1))
	if st["backend_errors"] != "0" {
		t.Errorf("backend_errors %s: dropping a client's replies broke the backend connection", st["backend_errors"])
	}
}

// TestMultiGetStreams: one get of many large values, from a client that
// does not read, is sent to the backends piece by piece as the client
// reads, never held whole; other clients are answered meanwhile; and when
// the client reads, it gets exactly memcached's reply.
func TestMultiGetStreams(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) {
		o.Connections = 1
		o.ClientOutputLimit = 1 << 20
		o.MaxItemSize = 128 << 10 // a window of 7 keys
		o.Timeout = time.Second
	})
	const nkeys = 300
	value := strings.Repeat("m", 100<<10)
	c := memcachedtest.Dial(t, tp.addr)
	var keys []string
	var want bytes.Buffer
	for i := 0; i < nkeys; i++ {
		k := "stream:" + strconv.Itoa(i)
		keys = append(keys, k)
		if i%10 == 3 {
			continue // a miss now and then
		}
		v := value[:len(value)-i]
		memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v), "STORED\r\n", 1)
		fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", k, len(v), v)
	}
	want.WriteString("END\r\n")
	stats := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, stats, "stats reset\r\n", "RESET\r\n", 1)

	if _, err := c.Write([]byte("get " + strings.Join(keys, " ") + "\r\n")); err != nil {
		t.Fatal(err)
	}
	s := sessionOf(t, tp, c)
	memcachedtest.WaitFor(t, "the proxy to stop sending pieces of the get", func() bool { return parked(s) })
	parkedAt := time.Now()
	sent, _ := strconv.Atoi(parseStats(memcachedtest.RoundTrip(t, stats, "stats\r\n", "END\r\n", 1))["cmd_get"])
	if sent >= nkeys {
		t.Errorf("all %d keys were sent to the backends for a client that reads nothing", sent)
	}
	if held, bound := s.held.Load(), heldBound(s, len(value)); held > bound {
		t.Errorf("%d reply bytes held for the client, bound %d", held, bound)
	}
	t.Logf("parked after sending %d of %d keys, holding %d bytes (soft limit %d, window %d)",
		sent, nkeys, s.held.Load(), s.softLimit, s.window)

	roundTrips(t, tp.addr, 100)
	// The client reads late, longer after its command than the backend
	// timeout: the pieces held back meanwhile must still be answered, their
	// timeout counting from when they are sent.
	if late := time.Until(parkedAt.Add(2 * tp.opts.Timeout)); late > 0 {
		time.Sleep(late)
	}

	// Read in steps, looking at the session's output buffer between them:
	// a client that reads steadily but never quite catches up must not
	// make it keep what was already written.
	// At most the high-water mark plus one reply, a piece of window values;
	// append may double the buffer.
	outBound := 2 * (outputHighWater + s.window*(len(value)+valueOverhead))
	got := make([]byte, 0, want.Len())
	buf := make([]byte, 64<<10)
	for len(got) < want.Len() {
		_ = c.SetReadDeadline(time.Now().Add(exchangeBound))
		n, err := c.Read(buf[:min(len(buf), want.Len()-len(got))])
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %d of %d reply bytes: %v", len(got), want.Len(), err)
		}
		var size int
		s.l.call(func() { size = cap(s.out) })
		if size > outBound {
			t.Fatalf("output buffer of %d bytes after %d of %d reply bytes read, bound %d", size, len(got), want.Len(), outBound)
		}
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the streamed reply differs from memcached's")
	}
	if s.cut.Load() {
		t.Fatal("the streaming client was disconnected")
	}
	if st := parseStats(memcachedtest.RoundTrip(t, stats, "stats\r\n", "END\r\n", 1)); st["output_limit_disconnects"] != "0" {
		t.Errorf("output_limit_disconnects %s", st["output_limit_disconnects"])
	}
	// The client can go on: the command after the long get is answered.
	if got := memcachedtest.RoundTrip(t, c, "get stream:0\r\n", "END\r\n", 1); !strings.HasPrefix(got, "VALUE stream:0 ") {
		t.Fatalf("next command: %.60q", got)
	}
}

// TestLargeValuesFromOneBackendNotCutOff: a client that reads slowly gets a
// long multi-get of values at the item size, all from one backend, so each
// piece's values arrive in one growing reply buffer. The buffer's spare
// capacity is memory the proxy holds too; the window must leave room for
// it, or a well-behaved client (no value over max_item_size) passes twice
// its soft limit and is cut off. The client reads in small steps and lets
// the proxy settle between them, so every piece is sent with the client
// just under its soft limit, the worst moment.
func TestLargeValuesFromOneBackendNotCutOff(t *testing.T) {
	const item = 190 << 10 // a window of a few values, so one reply holds several
	tp := startProxy(t, 1, func(o *Options) {
		o.ClientOutputLimit = 1 << 20
		o.MaxItemSize = item
	})
	const nkeys = 60
	value := strings.Repeat("L", item-100)
	c := memcachedtest.Dial(t, tp.addr)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}
	var keys []string
	var want bytes.Buffer
	for i := 0; i < nkeys; i++ {
		k := "big:" + strconv.Itoa(i)
		keys = append(keys, k)
		memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(value), value), "STORED\r\n", 1)
		fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", k, len(value), value)
	}
	want.WriteString("END\r\n")
	if _, err := c.Write([]byte("get " + strings.Join(keys, " ") + "\r\n")); err != nil {
		t.Fatal(err)
	}
	s := sessionOf(t, tp, c)
	// Small kernel buffers both ways, as on a slow path to a remote client:
	// what the proxy holds then follows what the client reads.
	s.l.call(func() {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
			t.Error(err)
		}
	})
	got := make([]byte, 0, want.Len())
	buf := make([]byte, 32<<10)
	for len(got) < want.Len() && !s.cut.Load() {
		memcachedtest.WaitFor(t, "the proxy to have nothing at the backend", func() bool { return nothingInFlight(s) })
		_ = c.SetReadDeadline(time.Now().Add(exchangeBound))
		n, err := c.Read(buf[:min(len(buf), want.Len()-len(got))])
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if s.cut.Load() {
		t.Fatalf("a client reading values within max_item_size was cut off after %d of %d bytes", len(got), want.Len())
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes, want memcached's reply of %d", len(got), want.Len())
	}
}
