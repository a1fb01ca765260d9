package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// BenchmarkProxyPipelinedGets measures the proxy's own cost per command:
// one client pipelines batches of gets (hits, spread over three real
// memcached) and reads the replies. allocs/op is the proxy's allocations
// per command, since the client side allocates nothing in the loop.
func BenchmarkProxyPipelinedGets(b *testing.B) {
	tp := startProxy(b, 3, nil)
	c := memctest.Dial(b, tp.addr)
	const batch = 16
	var cmds, want bytes.Buffer
	for i := 0; i < batch; i++ {
		k := "bench:" + strings.Repeat("k", i%7) + string(rune('a'+i))
		memctest.RoundTrip(b, c, "set "+k+" 0 0 10\r\n0123456789\r\n", "STORED\r\n", 1)
		cmds.WriteString("get " + k + "\r\n")
		want.WriteString("VALUE " + k + " 0 10\r\n0123456789\r\nEND\r\n")
	}
	benchPipelined(b, c, batch, cmds.Bytes(), want.Bytes())
}

// benchPipelined writes cmds, batch commands, on c and reads as many bytes
// of replies as want holds, over and over; the last replies must be want.
func benchPipelined(b *testing.B, c net.Conn, batch int, cmds, want []byte) {
	buf := make([]byte, len(want))
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		if _, err := c.Write(cmds); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !bytes.Equal(buf, want) {
		b.Fatalf("replies differ: %q", buf)
	}
}
