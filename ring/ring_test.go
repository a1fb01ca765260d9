package ring

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

func TestNewRejects(t *testing.T) {
	ok := backends(3)
	tests := []struct {
		name    string
		members []Member
		cfg     Config
		want    string
	}{
		{"nil members", nil, Config{}, "no members"},
		{"empty members", []Member{}, Config{}, "no members"},
		{"empty name", []Member{{Name: ""}}, Config{}, "empty name"},
		{"duplicate addr", []Member{{Name: "a:1"}, {Name: "b:1"}, {Name: "a:1", Weight: 2}}, Config{}, "duplicate"},
		{"negative weight", []Member{{Name: "a:1", Weight: -1}}, Config{}, "weight"},
		{"huge weight", []Member{{Name: "a:1", Weight: MaxWeight + 1}}, Config{}, "weight"},
		{"share name collision", []Member{{Name: "a#1"}, {Name: "a", Weight: 2}}, Config{}, "collides"},
		{"negative partitions", ok, Config{Partitions: -1}, "partitions"},
		{"huge partitions", ok, Config{Partitions: MaxPartitions + 1}, "partitions"},
		{"negative replication", ok, Config{ReplicationFactor: -5}, "replication"},
		{"huge replication", ok, Config{ReplicationFactor: MaxReplicationFactor + 1}, "replication"},
		{"too slow to build", []Member{{Name: "a", Weight: MaxWeight}, {Name: "b", Weight: MaxWeight}}, Config{ReplicationFactor: 20}, "too slow"},
		{"load below 1", ok, Config{Load: 0.99}, "load"},
		{"negative load", ok, Config{Load: -1.25}, "load"},
		{"NaN load", ok, Config{Load: math.NaN()}, "load"},
		{"infinite load", ok, Config{Load: math.Inf(1)}, "load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.members, tt.cfg)
			if err == nil {
				t.Fatalf("New succeeded (%d members), want error containing %q", r.Len(), tt.want)
			}
			if r != nil {
				t.Errorf("New returned a ring with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	if _, err := New(nil, Config{}); !errors.Is(err, ErrNoMembers) {
		t.Errorf("New(nil) error = %v, want ErrNoMembers", err)
	}
}

// The library panics when it cannot place a partition. Validation keeps
// New away from that, so call the builder directly with a capacity the
// check cannot see through (NaN) to prove the panic becomes an error.
func TestBuildRecoversLibraryPanic(t *testing.T) {
	_, shares, err := expand(backends(3), DefaultReplicationFactor)
	if err != nil {
		t.Fatal(err)
	}
	c, err := buildConsistent(shares, Config{Partitions: 101, ReplicationFactor: 20, Load: math.NaN()})
	if err == nil || c != nil {
		t.Fatalf("buildConsistent with NaN load = %v, %v; want error", c, err)
	}
	if !strings.Contains(err.Error(), "not enough room") {
		t.Errorf("error %q does not carry the library's panic message", err)
	}
	// And the capacity check catches a load that is simply too small.
	if _, err := buildConsistent(shares, Config{Partitions: 101, ReplicationFactor: 20, Load: 0.5}); err == nil {
		t.Error("buildConsistent with load 0.5 succeeded")
	}
}

// Load 1.0 is the tightest accepted bound; it must build for any number of
// members (an ejection changes the count), including more members than
// partitions, and give every share at most ceil(P/shares) partitions.
func TestLoadOneBuildsForAnyMemberCount(t *testing.T) {
	for _, parts := range []int{1, 2, 7, 271, 7919} {
		for n := 1; n <= 12; n++ {
			ms := backends(n)
			r := mustNew(t, ms, Config{Partitions: parts, Load: 1})
			limit := (parts + n - 1) / n
			for i, c := range partitionCounts(r) {
				if c > limit {
					t.Errorf("P=%d n=%d: member %d owns %d partitions, limit %d", parts, n, i, c, limit)
				}
			}
		}
	}
}

// Locate reads a table built from the library; it must agree with the
// library's own LocateKey for every key, whatever the config and weights.
func TestLocateMatchesLibrary(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	cases := []struct {
		members []Member
		cfg     Config
	}{
		{backends(1), Config{}},
		{backends(3), Config{}},
		{backends(5), Config{}},
		{backends(10), Config{}},
		{backends(10), Config{Partitions: 271, ReplicationFactor: 20, Load: 1.25}},
		{backends(4), Config{Partitions: 1}},
		{backends(7), Config{Partitions: 65537, ReplicationFactor: 100, Load: 1.05}},
		{backends(6), Config{Partitions: 3, Load: 1}}, // more members than partitions
		{[]Member{{Name: "a:1", Weight: 3}, {Name: "b:1"}, {Name: "c:1", Weight: 2}}, Config{}},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("n=%d/%+v", len(tc.members), tc.cfg)
		t.Run(name, func(t *testing.T) {
			r := mustNew(t, tc.members, tc.cfg)
			cfg, err := tc.cfg.WithDefaults()
			if err != nil {
				t.Fatal(err)
			}
			_, shares, err := expand(tc.members, cfg.ReplicationFactor)
			if err != nil {
				t.Fatal(err)
			}
			lib, err := buildConsistent(shares, cfg)
			if err != nil {
				t.Fatal(err)
			}
			check := func(key []byte) {
				t.Helper()
				want := lib.LocateKey(key).(share).backend
				if got := r.Locate(key); got != want {
					t.Fatalf("Locate(%q) = %d, library says %d", key, got, want)
				}
			}
			check(nil)
			check([]byte{})
			var buf []byte
			for i := 0; i < 50_000; i++ {
				buf = appendKey(buf, i)
				check(buf)
			}
			for i := 0; i < 10_000; i++ {
				b := make([]byte, rng.Intn(251))
				rng.Read(b)
				check(b)
			}
		})
	}
}

func TestMembersAndLen(t *testing.T) {
	in := []Member{{Name: "c:1", Weight: 2}, {Name: "a:1"}, {Name: "b:1", Weight: 1}}
	r := mustNew(t, in, Config{})
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
	got := r.Members()
	want := []Member{{Name: "c:1", Weight: 2}, {Name: "a:1", Weight: 1}, {Name: "b:1", Weight: 1}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Members()[%d] = %+v, want %+v (order as given, weight 0 -> 1)", i, got[i], want[i])
		}
	}
	got[0].Name = "mutated"
	in[1].Name = "mutated"
	if r.Members()[0].Name != "c:1" || r.Members()[1].Name != "a:1" {
		t.Error("ring changed through a slice passed to or returned by it")
	}
	key := []byte("some-key")
	if r.LocateName(key) != r.Members()[r.Locate(key)].Name {
		t.Error("LocateName disagrees with Members()[Locate]")
	}
}

// Placement depends on the set of members, not their order: two proxies
// (or one after a config reload) listing the same backends in another order
// must agree on every key.
func TestPlacementIgnoresMemberOrder(t *testing.T) {
	ms := []Member{{Name: "10.0.0.1:11211"}, {Name: "10.0.0.2:11211", Weight: 2}, {Name: "10.0.0.3:11211"}, {Name: "10.0.0.4:11211", Weight: 3}}
	rev := []Member{ms[3], ms[2], ms[1], ms[0]}
	a, b := mustNew(t, ms, Config{}), mustNew(t, rev, Config{})
	var buf []byte
	for i := 0; i < 100_000; i++ {
		buf = appendKey(buf, i)
		if x, y := a.LocateName(buf), b.LocateName(buf); x != y {
			t.Fatalf("key %q: %s in given order, %s in reverse order", buf, x, y)
		}
	}
}

func TestWeightZeroIsOne(t *testing.T) {
	a := mustNew(t, []Member{{Name: "a:1"}, {Name: "b:1"}}, Config{})
	b := mustNew(t, []Member{{Name: "a:1", Weight: 1}, {Name: "b:1", Weight: 1}}, Config{})
	if tableFingerprint(a) != tableFingerprint(b) {
		t.Error("weight 0 and weight 1 place keys differently")
	}
}

func TestSingleMemberOwnsEverything(t *testing.T) {
	r := mustNew(t, []Member{{Name: "only:1", Weight: 5}}, Config{})
	for p, o := range r.owner {
		if o != 0 {
			t.Fatalf("partition %d owned by %d", p, o)
		}
	}
}

func TestLocateZeroAllocs(t *testing.T) {
	r := mustNew(t, backends(10), Config{})
	key := []byte("user:1234567890:profile")
	if n := testing.AllocsPerRun(1000, func() { _ = r.Locate(key) }); n != 0 {
		t.Errorf("Locate allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = r.LocateName(key) }); n != 0 {
		t.Errorf("LocateName allocates %v times per call", n)
	}
}

// Run under -race: many goroutines share one ring without locks.
func TestConcurrentLocate(t *testing.T) {
	r := mustNew(t, backends(5), Config{})
	want := make([]int, 2000)
	var buf []byte
	for i := range want {
		buf = appendKey(buf, i)
		want[i] = r.Locate(buf)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range want {
				buf = appendKey(buf, i)
				if got := r.Locate(buf); got != want[i] {
					t.Errorf("key %d: %d concurrently, %d before", i, got, want[i])
					return
				}
				_ = r.Members()
			}
		}()
	}
	wg.Wait()
}
