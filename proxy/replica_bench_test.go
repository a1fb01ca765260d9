package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/ring"
)

// replicaTableOf builds the table of a pool of three backends keeping
// replicas copies, without a running proxy.
func replicaTableOf(tb testing.TB, replicas int) *poolTable {
	tb.Helper()
	servers := []ring.Server{{Addr: "10.0.0.1:11211"}, {Addr: "10.0.0.2:11211"}, {Addr: "10.0.0.3:11211"}}
	pc, err := ring.NewPlacement(servers, ring.PlacementOptions{Distribution: ring.DistRing})
	if err != nil {
		tb.Fatal(err)
	}
	t := &poolTable{pool: &pool{name: "p", replicas: replicas}, place: pc}
	for _, s := range servers {
		t.members = append(t.members, &backend{name: s.Addr, addr: s.Addr})
		t.zones = append(t.zones, "")
		t.copyStats = append(t.copyStats, &copyCounters{})
	}
	t.src = copySource{place: pc, members: t.members, zones: t.zones, replicas: replicas}
	return t
}

// BenchmarkCopyLookup measures what a get of one key pays to find where
// to read: its backend on a single-copy pool (Locate), and on a pool of
// two copies its first copy and the next (firstCopy, then readCopies as
// sendWhole does).
func BenchmarkCopyLookup(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("user:%d:profile", i))
	}
	one, two := replicaTableOf(b, 1), replicaTableOf(b, 2)
	b.Run("replicas=1", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = one.locate(keys[i%len(keys)])
		}
	})
	b.Run("replicas=2", func(b *testing.B) {
		s := &session{}
		r := &request{sess: s}
		for i := 0; i < b.N; i++ {
			k := keys[i%len(keys)]
			firstCopy(two, k, 0, s.copyScratch[:0])
			r.hook = nil
			_ = readCopies(two, r, k, false)
		}
	})
}

func TestCopyLookupDoesNotAllocate(t *testing.T) {
	two := replicaTableOf(t, 2)
	s := &session{}
	r := &request{sess: s}
	key := []byte("k") // keys come from the read buffer
	if n := testing.AllocsPerRun(100, func() {
		firstCopy(two, key, 0, s.copyScratch[:0])
		r.hook = nil
		readCopies(two, r, key, false)
	}); n != 0 {
		t.Fatalf("copy lookup allocates %v times", n)
	}
}

// BenchmarkProxyPipelinedGetsReplicated is BenchmarkProxyPipelinedGets on
// a pool that keeps two copies of each key: reads go to one copy, and
// allocs/op must stay 0.
func BenchmarkProxyPipelinedGetsReplicated(b *testing.B) {
	tp := startProxy(b, 3, func(o *Options) { o.Replicas = 2 })
	c := memcachedtest.Dial(b, tp.addr)
	var cmds, want strings.Builder
	for i := range 16 {
		k := fmt.Sprintf("bench:%c", 'a'+i)
		memcachedtest.RoundTrip(b, c, "set "+k+" 0 0 10\r\n0123456789\r\n", "STORED\r\n", 1)
		cmds.WriteString("get " + k + "\r\n")
		want.WriteString("VALUE " + k + " 0 10\r\n0123456789\r\nEND\r\n")
	}
	benchPipelined(b, c, 16, []byte(cmds.String()), []byte(want.String()))
}

// BenchmarkProxyPipelinedSetsReplicated: every set goes to two copies.
func BenchmarkProxyPipelinedSetsReplicated(b *testing.B) {
	tp := startProxy(b, 3, func(o *Options) { o.Replicas = 2 })
	c := memcachedtest.Dial(b, tp.addr)
	var cmds, want strings.Builder
	for i := range 16 {
		cmds.WriteString(fmt.Sprintf("set bench:%c 0 0 10\r\n0123456789\r\n", 'a'+i))
		want.WriteString("STORED\r\n")
	}
	benchPipelined(b, c, 16, []byte(cmds.String()), []byte(want.String()))
}
