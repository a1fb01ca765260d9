package ring

import (
	"fmt"
	"testing"
)

// benchKeys are memcached-like keys, many enough that the lookups do not
// all hit one cache line of the table.
func benchKeys() [][]byte {
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("user:%d:session:%08x", i, i*2654435761))
	}
	return keys
}

func BenchmarkLocate(b *testing.B) {
	r := mustNew(b, backends(10), Config{})
	keys := benchKeys()
	b.ReportAllocs()
	b.ResetTimer()
	sink := 0
	for i := 0; i < b.N; i++ {
		sink += r.Locate(keys[i&(len(keys)-1)])
	}
	_ = sink
}

func BenchmarkLocateParallel(b *testing.B) {
	r := mustNew(b, backends(10), Config{})
	keys := benchKeys()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i, sink := 0, 0
		for pb.Next() {
			sink += r.Locate(keys[i&(len(keys)-1)])
			i++
		}
		_ = sink
	})
}

// BenchmarkLibraryLocateKey is the lookup Locate replaces: the library's
// LocateKey takes a read lock (an atomic add on a cache line all cores
// share) and does a map lookup. It is here to keep the table's advantage
// measured, not assumed.
func BenchmarkLibraryLocateKey(b *testing.B) {
	cfg, _ := Config{}.WithDefaults()
	_, shares, err := expand(backends(10), cfg.ReplicationFactor)
	if err != nil {
		b.Fatal(err)
	}
	c, err := buildConsistent(shares, cfg)
	if err != nil {
		b.Fatal(err)
	}
	keys := benchKeys()
	b.ReportAllocs()
	b.ResetTimer()
	sink := 0
	for i := 0; i < b.N; i++ {
		sink += c.LocateKey(keys[i&(len(keys)-1)]).(share).backend
	}
	_ = sink
}

// BenchmarkNew measures a rebuild, which the proxy does off the request
// path on every ejection, return and config reload.
func BenchmarkNew(b *testing.B) {
	for _, bc := range []struct {
		n   int
		cfg Config
	}{
		{10, Config{Partitions: 7919}},
		{10, Config{Partitions: 7919, ReplicationFactor: 160}},
		{100, Config{Partitions: 7919}},
		{1000, Config{Partitions: 7919}}, // near the build-work limit
	} {
		b.Run(fmt.Sprintf("members=%d/rf=%d", bc.n, max(bc.cfg.ReplicationFactor, DefaultReplicationFactor)), func(b *testing.B) {
			ms := backends(bc.n)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := New(ms, bc.cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
