package proxy

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// TestMetaSlowReaderHeldBack: a client pipelining mg of large values
// without reading is held at its window of retrievals in flight, as for
// get, instead of being cut off at the hard limit: once it reads, every
// value arrives.
func TestMetaSlowReaderHeldBack(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) {
		o.Connections = 1
		o.ClientOutputLimit = 1 << 20 // hard limit 2 MiB
		o.MaxItemSize = 64 << 10      // a window of 15 keys
	})
	// Values of half the item size: a reply may be charged up to twice
	// its size (protocol.Reply.reserve doubles a pooled buffer), and the
	// window plus the soft limit must stay under the hard limit.
	value := strings.Repeat("h", 30<<10)
	direct := memctest.Dial(t, tp.backends[0].Addr)
	memctest.RoundTrip(t, direct, fmt.Sprintf("ms big %d\r\n%s\r\n", len(value), value), "HD\r\n", 1)

	const n = 400 // 12 MB of replies, six times the hard limit
	c := memctest.Dial(t, tp.addr)
	if _, err := c.Write([]byte(strings.Repeat("mg big v\r\n", n) + "mn\r\n")); err != nil {
		t.Fatal(err)
	}
	s := sessionOf(t, tp, c)
	time.Sleep(200 * time.Millisecond) // let the proxy run ahead of the reader
	if s.cut.Load() {
		t.Fatal("a client pipelining mg was cut off instead of held back")
	}
	if h := s.held.Load(); h > s.hardLimit {
		t.Fatalf("%d bytes held for the client, hard limit %d", h, s.hardLimit)
	}
	want := strings.Repeat(fmt.Sprintf("VA %d\r\n%s\r\n", len(value), value), n) + "MN\r\n"
	_ = c.SetReadDeadline(time.Now().Add(exchangeBound))
	got, err := io.ReadAll(io.LimitReader(c, int64(len(want))))
	if string(got) != want {
		t.Fatalf("got %d bytes (%v), want %d; cut off %v", len(got), err, len(want), s.cut.Load())
	}
}
