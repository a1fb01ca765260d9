package proxy

import (
	"math/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// garbagePieces are fragments of valid and invalid commands; random
// streams of them probe the parser and dispatcher together.
var garbagePieces = []string{
	"get a", "get a b c", "gets a", "gat 10 a b", "gats 0 a", "set a 0 0 1\r\nx", "set a 0 0 5\r\nxy",
	"add b 1 2 3", "cas a 0 0 1 5", "incr a 1", "decr a 99999999999999999999", "touch a -1",
	"delete a", "delete a 0", "delete a noreply", "flush_all", "flush_all 0 noreply", "version",
	"verbosity 1", "stats", "stats backends", "stats items", "noreply", " ", "\x00", "\xff\xfe",
	"set " + strings.Repeat("k", 251) + " 0 0 1", "get " + strings.Repeat("k", 251),
	"set a 0 0 2000000", strings.Repeat("z", 3000), "\r\n", "\n", "\r", "GET a", "quit?",
	"set a 0 0 -1", "set a 99999999999 0 1", "gat", "mg a v", "ms a 1", "incr", "cas a 0 0 1",
}

// TestGarbageNeverHurtsTheProxy sends random streams of command fragments,
// each on its own connection, then checks that the proxy still serves a
// well-behaved client and that every session ended.
func TestGarbageNeverHurtsTheProxy(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.MaxItemSize = 64 << 10 })
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		var b strings.Builder
		for j := rnd.Intn(30); j >= 0; j-- {
			b.WriteString(garbagePieces[rnd.Intn(len(garbagePieces))])
			if rnd.Intn(4) > 0 {
				b.WriteString("\r\n")
			}
		}
		c, err := net.DialTimeout("tcp", tp.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(exchangeBound))
		_, _ = c.Write([]byte(b.String()))
		// Read what comes until the proxy has nothing more to say, then
		// leave, sometimes without reading at all.
		if rnd.Intn(3) > 0 {
			buf := make([]byte, 64<<10)
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
		}
		c.Close()
	}
	// A well-behaved client is served as before.
	c := memcachedtest.Dial(t, tp.addr)
	if got := memcachedtest.RoundTrip(t, c, "set ok 0 0 2\r\nhi\r\nget ok\r\n", "END\r\n", 1); got != "STORED\r\nVALUE ok 0 2\r\nhi\r\nEND\r\n" {
		t.Fatalf("after the garbage: %q", got)
	}
	c.Close()
	// Every garbage session ends: none is stuck on a reply or a read.
	memcachedtest.WaitFor(t, "every session to end after its client left", func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return len(tp.sessions) == 0
	})
}
