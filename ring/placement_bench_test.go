package ring

import (
	"fmt"
	"testing"
)

// benchKeys100 are keys of about 100 bytes, the size the brief of the
// placements names; 4096 of them, so the lookups spread over the tables.
func benchKeys100() [][]byte {
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("tenant:%06d:user:%08x:session:%016x:cart:items:v2:%032d", i%977, i*2654435761, uint64(i)*0x9e3779b97f4a7c15, i))
	}
	return keys
}

// benchServers are ten backends of mixed weights.
func benchServers() []Server {
	s := make([]Server, 10)
	for i := range s {
		s[i] = Server{Addr: fmt.Sprintf("10.0.0.%d:11211", i+1), Weight: 1 + i%3}
	}
	return s
}

func BenchmarkPlacementLocate(b *testing.B) {
	keys := benchKeys100()
	cases := []PlacementOptions{
		{Distribution: DistRing},
		{Distribution: DistKetama, Hash: HashFNV1a64},
		{Distribution: DistKetama, Hash: HashMD5},
		{Distribution: DistKetama, Hash: HashMurmur},
		{Distribution: DistLibketama},
		{Distribution: DistDalli},
		{Distribution: DistModula, Hash: HashCRC32a},
		{Distribution: DistModula, Hash: HashFNV1a64},
	}
	for _, o := range cases {
		name := o.Distribution
		if o.Hash != "" {
			name += "/" + o.Hash
		}
		b.Run(name, func(b *testing.B) {
			p, err := NewPlacement(benchServers(), o)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(keys[0])))
			b.ReportAllocs()
			b.ResetTimer()
			sink := 0
			for i := 0; i < b.N; i++ {
				sink += p.Locate(keys[i&(len(keys)-1)])
			}
			_ = sink
		})
	}
}

// BenchmarkPlacementAppendLocations is a key's home and two copies.
func BenchmarkPlacementAppendLocations(b *testing.B) {
	keys := benchKeys100()
	for _, d := range Distributions() {
		b.Run(d, func(b *testing.B) {
			p, err := NewPlacement(benchServers(), PlacementOptions{Distribution: d})
			if err != nil {
				b.Fatal(err)
			}
			locs := make([]int, 0, 3)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				locs = p.AppendLocations(locs[:0], keys[i&(len(keys)-1)], 3)
			}
		})
	}
}

// BenchmarkNewPlacement is a rebuild, done off the data path on a reload
// or an ejection.
func BenchmarkNewPlacement(b *testing.B) {
	for _, d := range Distributions() {
		b.Run(d, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := NewPlacement(benchServers(), PlacementOptions{Distribution: d}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
