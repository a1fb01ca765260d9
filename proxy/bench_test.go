package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// BenchmarkProxyPipelinedGets measures the proxy's own cost per command:
// one client pipelines batches of gets (hits, spread over three real
// memcached) and reads the replies. allocs/op is the proxy's allocations
// per command, since the client side allocates nothing in the loop.
func BenchmarkProxyPipelinedGets(b *testing.B) {
	benchBatch(b, func(c net.Conn, k string) (cmd, reply string) {
		memcachedtest.RoundTrip(b, c, "set "+k+" 0 0 10\r\n0123456789\r\n", "STORED\r\n", 1)
		return "get " + k + "\r\n", "VALUE " + k + " 0 10\r\n0123456789\r\nEND\r\n"
	})
}

// BenchmarkProxyPipelinedSets is BenchmarkProxyPipelinedGets for sets,
// the path routeByKey and its failover check are on: allocs/op must stay
// 0 with every backend in the ring.
func BenchmarkProxyPipelinedSets(b *testing.B) {
	benchBatch(b, func(_ net.Conn, k string) (cmd, reply string) {
		return "set " + k + " 0 0 10\r\n0123456789\r\n", "STORED\r\n"
	})
}

// benchBatch runs benchPipelined on a connection to a proxy over three
// real memcached with a batch of 16 commands, one a key: prepare readies
// key k on c and returns its command and the reply it must get.
func benchBatch(b *testing.B, prepare func(c net.Conn, k string) (cmd, reply string)) {
	tp := startProxy(b, 3, nil)
	c := memcachedtest.Dial(b, tp.addr)
	const batch = 16
	var cmds, want bytes.Buffer
	for i := 0; i < batch; i++ {
		k := "bench:" + strings.Repeat("k", i%7) + string(rune('a'+i))
		cmd, reply := prepare(c, k)
		cmds.WriteString(cmd)
		want.WriteString(reply)
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

// BenchmarkProxyMultiGets is BenchmarkProxyPipelinedGets for gets of ten
// keys each, which the proxy splits by backend and merges back in the
// client's order: one op is one key.
func BenchmarkProxyMultiGets(b *testing.B) {
	tp := startProxy(b, 3, nil)
	c := memcachedtest.Dial(b, tp.addr)
	const commands, keysPer = 4, 10
	var cmds, want bytes.Buffer
	for i := 0; i < commands; i++ {
		cmds.WriteString("get")
		for j := 0; j < keysPer; j++ {
			k := fmt.Sprintf("bench:multi:%d:%d", i, j)
			memcachedtest.RoundTrip(b, c, "set "+k+" 0 0 10\r\n0123456789\r\n", "STORED\r\n", 1)
			cmds.WriteString(" " + k)
			want.WriteString("VALUE " + k + " 0 10\r\n0123456789\r\n")
		}
		cmds.WriteString("\r\n")
		want.WriteString("END\r\n")
	}
	benchPipelined(b, c, commands*keysPer, cmds.Bytes(), want.Bytes())
}
