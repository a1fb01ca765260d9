package ring

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// placementCases builds one placement of every distribution over the same
// weighted servers.
func placementCases(t testing.TB) map[string]Placement {
	servers := []Server{
		{Addr: "10.0.0.1:11211"},
		{Addr: "10.0.0.2:11211", Weight: 2},
		{Addr: "10.0.0.3:11212", Name: "cache-c", Weight: 3},
		{Addr: "10.0.0.4:11211"},
		{Addr: "10.0.0.5:11211"},
	}
	out := map[string]Placement{}
	for _, d := range Distributions() {
		p, err := NewPlacement(servers, PlacementOptions{Distribution: d})
		if err != nil {
			t.Fatalf("NewPlacement(%s): %v", d, err)
		}
		out[d] = p
	}
	return out
}

func TestPlacementContract(t *testing.T) {
	for d, p := range placementCases(t) {
		t.Run(d, func(t *testing.T) {
			if p.Len() != 5 || p.Options().Distribution != d {
				t.Fatalf("Len %d, Options %+v", p.Len(), p.Options())
			}
			var buf []byte
			var locs []int
			homes := make([]int, p.Len())
			for i := 0; i < 20000; i++ {
				buf = appendKey(buf, i)
				home := p.Locate(buf)
				homes[home]++
				locs = p.AppendLocations(locs[:0], buf, p.Len())
				if len(locs) != p.Len() || locs[0] != home {
					t.Fatalf("key %q: locations %v, home %d", buf, locs, home)
				}
				sorted := slices.Clone(locs)
				slices.Sort(sorted)
				if len(slices.Compact(sorted)) != len(locs) {
					t.Fatalf("key %q: locations %v repeat a backend", buf, locs)
				}
				if two := p.AppendLocations([]int{7}, buf, 2); !slices.Equal(two, []int{7, locs[0], locs[1]}) {
					t.Fatalf("key %q: AppendLocations(n=2) after 7 = %v, want [7 %v]", buf, two, locs[:2])
				}
			}
			for i, n := range homes {
				if n == 0 {
					t.Errorf("backend %d is home to no key: %v", i, homes)
				}
			}
			if got := p.AppendLocations(nil, []byte("k"), 0); len(got) != 0 {
				t.Errorf("n=0 appended %v", got)
			}
		})
	}
}

// The default placement is the Ring itself: same home for every key.
func TestRingPlacementIsRing(t *testing.T) {
	ms := []Member{ringMember("10.0.0.1:11211", 1), ringMember("10.0.0.2:11211", 2), ringMember("10.0.0.3:11211", 3)}
	r := mustNew(t, ms, Config{})
	p, err := NewPlacement([]Server{{Addr: "10.0.0.1:11211"}, {Addr: "10.0.0.2:11211", Weight: 2}, {Addr: "10.0.0.3:11211", Weight: 3}}, PlacementOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := RingPlacement(r, Config{})
	if p.Options() != wrapped.Options() {
		t.Errorf("options %+v and %+v differ", p.Options(), wrapped.Options())
	}
	var buf []byte
	for i := 0; i < 100000; i++ {
		buf = appendKey(buf, i)
		if a, b, c := r.Locate(buf), p.Locate(buf), wrapped.Locate(buf); a != b || a != c {
			t.Fatalf("key %q: ring %d, placement %d, wrapped %d", buf, a, b, c)
		}
	}
	// A name replaces the address as the identity, as backends[].name does.
	named, err := NewPlacement([]Server{{Addr: "x:1", Name: "10.0.0.1:11211"}, {Addr: "y:1", Name: "10.0.0.2:11211", Weight: 2}, {Addr: "z:1", Name: "10.0.0.3:11211", Weight: 3}}, PlacementOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range pinnedKeys {
		if named.Locate([]byte(k)) != r.Locate([]byte(k)) {
			t.Errorf("key %q: named placement differs from the ring", k)
		}
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct{ tag, key, want string }{
		{"{}", "user:{42}:name", "42"},
		{"{}", "{42}", "42"},
		{"{}", "a{}b", "a{}b"},   // nothing between: the whole key
		{"{}", "a{b", "a{b"},     // no closing byte
		{"{}", "a}b{c", "a}b{c"}, // closing only before the opening
		{"{}", "{a}{b}", "a"},    // the first pair
		{"{}", "x{{a}}", "{a"},   // first opening, first closing after it
		{"$$", "p$id$q", "id"},   // same byte twice
		{"", "user:{42}", "user:{42}"},
	}
	for _, tt := range tests {
		if got := hashTag(tt.tag).apply([]byte(tt.key)); string(got) != tt.want {
			t.Errorf("tag %q, key %q: hashed %q, want %q", tt.tag, tt.key, got, tt.want)
		}
	}
	// Keys with one tag share a home on every distribution.
	servers := []Server{{Addr: "a:1"}, {Addr: "b:1"}, {Addr: "c:1"}, {Addr: "d:1"}}
	for _, d := range Distributions() {
		p, err := NewPlacement(servers, PlacementOptions{Distribution: d, HashTag: "{}"})
		if err != nil {
			t.Fatal(err)
		}
		homes := map[int]bool{}
		for i := 0; i < 100; i++ {
			homes[p.Locate([]byte(fmt.Sprintf("k%d:{user:7}:%d", i, i)))] = true
		}
		if len(homes) != 1 {
			t.Errorf("%s: one tag, %d homes", d, len(homes))
		}
	}
}

func TestNewPlacementRejects(t *testing.T) {
	ok := []Server{{Addr: "a:1"}, {Addr: "b:1"}}
	tests := []struct {
		name    string
		servers []Server
		o       PlacementOptions
		want    string
	}{
		{"no servers", nil, PlacementOptions{}, "no members"},
		{"unknown distribution", ok, PlacementOptions{Distribution: "random"}, "unknown distribution"},
		{"unknown hash", ok, PlacementOptions{Distribution: DistKetama, Hash: "sha256"}, "unknown hash"},
		{"hash on libketama", ok, PlacementOptions{Distribution: DistLibketama, Hash: HashMD5}, "fixed key hash"},
		{"hash on ring", ok, PlacementOptions{Hash: HashFNV1a64}, "fixed key hash"},
		{"long tag", ok, PlacementOptions{HashTag: "{{}"}, "two bytes"},
		{"ring settings on ketama", ok, PlacementOptions{Distribution: DistKetama, Ring: Config{Partitions: 7}}, "no ring settings"},
		{"bad ring settings", ok, PlacementOptions{Ring: Config{Load: 0.5}}, "load"},
		{"empty address", []Server{{Addr: ""}}, PlacementOptions{Distribution: DistModula}, "empty address"},
		{"bad weight", []Server{{Addr: "a:1", Weight: MaxWeight + 1}}, PlacementOptions{Distribution: DistDalli}, "weight"},
		{"no port", []Server{{Addr: "a"}, {Addr: "b:1"}}, PlacementOptions{Distribution: DistKetama}, "missing port"},
		{"same ketama name", []Server{{Addr: "a:11211"}, {Addr: "b:1", Name: "a"}}, PlacementOptions{Distribution: DistKetama}, "both hashed as \"a\""},
		{"same libketama name", []Server{{Addr: "a:11211"}, {Addr: "a:11211"}}, PlacementOptions{Distribution: DistLibketama}, "distinct names"},
		{"same dalli name", []Server{{Addr: "a:5"}, {Addr: "x:1", Name: "a:5"}}, PlacementOptions{Distribution: DistDalli}, "distinct names"},
		{"same modula backend", []Server{{Addr: "a:5"}, {Addr: "a:5"}}, PlacementOptions{Distribution: DistModula}, "distinct names"},
		{"same ring backend", []Server{{Addr: "a:5"}, {Addr: "a:5"}}, PlacementOptions{}, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlacement(tt.servers, tt.o)
			if err == nil {
				t.Fatalf("NewPlacement succeeded (%d servers), want an error containing %q", p.Len(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestPlacementDefaults(t *testing.T) {
	for d, want := range map[string]string{DistKetama: DefaultHash, DistModula: DefaultHash, DistLibketama: "", DistDalli: "", DistRing: ""} {
		p, err := NewPlacement([]Server{{Addr: "a:1"}}, PlacementOptions{Distribution: d})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Options().Hash; got != want {
			t.Errorf("%s: hash %q, want %q", d, got, want)
		}
		if p.Locate([]byte("any")) != 0 || !slices.Equal(p.AppendLocations(nil, []byte("any"), 3), []int{0}) {
			t.Errorf("%s: one server, but not every key goes to it", d)
		}
	}
}

// twemproxy's order: shorter names first, then bytes; 11211 drops the port.
func TestTwemproxyOrder(t *testing.T) {
	servers := []Server{
		{Addr: "10.0.0.2:11212"},       // "10.0.0.2:11212"
		{Addr: "10.0.0.9:11211"},       // "10.0.0.9"
		{Addr: "10.0.0.1:11212"},       // "10.0.0.1:11212"
		{Addr: "1.1.1.1:1", Name: "z"}, // "z"
	}
	got, err := TwemproxyOrder(servers)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 1, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// Ketama ties: two servers with points at one value. Twemproxy's sort
// keeps the server first in its order ahead, libmemcached's compares
// indexes, Dalli's lookup takes the last point at or below the hash.
func TestContinuumTies(t *testing.T) {
	c := sortPoints([]point{{10, 0}, {20, 1}, {20, 2}, {30, 0}, {20, 0}})
	if want := (continuum{{10, 0}, {20, 1}, {20, 2}, {20, 0}, {30, 0}}); !slices.Equal(c, want) {
		t.Fatalf("sorted %v, want %v (stable)", c, want)
	}
	for _, tt := range []struct {
		h                uint32
		atOrAfter, below int
	}{
		{0, 0, 4}, {10, 0, 0}, {11, 1, 0}, {20, 1, 3}, {25, 4, 3}, {30, 4, 4}, {31, 0, 4},
	} {
		if got := c.atOrAfter(tt.h); got != tt.atOrAfter {
			t.Errorf("atOrAfter(%d) = %d, want %d", tt.h, got, tt.atOrAfter)
		}
		if got := c.atOrBelow(tt.h); got != tt.below {
			t.Errorf("atOrBelow(%d) = %d, want %d", tt.h, got, tt.below)
		}
	}
}

// The ketama point counts follow the originals' float arithmetic: 160 per
// server at equal weights, four at a time, rounding down.
func TestKetamaPointCounts(t *testing.T) {
	servers := []Server{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 2}, {Addr: "c:1", Weight: 7}}
	for _, d := range []string{DistKetama, DistLibketama} {
		p, err := NewPlacement(servers, PlacementOptions{Distribution: d})
		if err != nil {
			t.Fatal(err)
		}
		var pts continuum
		switch k := p.(type) {
		case *ketama:
			pts = k.points
		case *libketama:
			pts = k.points
		}
		per := make([]int, 3)
		for _, pt := range pts {
			per[pt.server]++
		}
		// 0.1*160/4*3 = 12 (48), 0.2 -> 24 (96), 0.7 -> 84 (336).
		if want := []int{48, 96, 336}; !slices.Equal(per, want) {
			t.Errorf("%s: points per server %v, want %v", d, per, want)
		}
	}
}

func TestPlacementsDoNotAllocate(t *testing.T) {
	keys := benchKeys()
	for d, p := range placementCases(t) {
		locs := make([]int, 0, 8)
		i := 0
		if n := testing.AllocsPerRun(1000, func() {
			k := keys[i&(len(keys)-1)]
			i++
			_ = p.Locate(k)
			locs = p.AppendLocations(locs[:0], k, 3)
		}); n != 0 {
			t.Errorf("%s: %v allocations per key", d, n)
		}
	}
}
