package proxy

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
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
	// Values near the item size: the window of replies in flight plus the
	// soft limit must stay under the hard limit, each reply charged about
	// its size.
	value := strings.Repeat("h", 60<<10)
	direct := memcachedtest.Dial(t, tp.backends[0].Addr)
	memcachedtest.RoundTrip(t, direct, fmt.Sprintf("ms big %d\r\n%s\r\n", len(value), value), "HD\r\n", 1)

	const n = 400 // 24 MB of replies, twelve times the hard limit
	c := memcachedtest.Dial(t, tp.addr)
	// Looked up first: a session cut off would end and could be gone.
	s := sessionOf(t, tp, c)
	if _, err := c.Write([]byte(strings.Repeat("mg big v\r\n", n) + "mn\r\n")); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the proxy to hold the client back or cut it off", func() bool { return s.cut.Load() || parked(s) })
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
