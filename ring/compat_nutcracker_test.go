package ring_test

import (
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/nutcrackertest"
	"github.com/mcproxy/mcproxy/ring"
)

type (
	nutcrackerServer = nutcrackertest.Server
	nutcrackerPool   = nutcrackertest.Pool
)

// placementServers turns a twemproxy servers list into Placement servers:
// the same address, weight and name.
func placementServers(ns []nutcrackerServer) []ring.Server {
	s := make([]ring.Server, len(ns))
	for i, n := range ns {
		s[i] = ring.Server{Name: n.Name, Addr: n.Addr, Weight: n.Weight}
	}
	return s
}

// runNutcrackerCase starts len(weights) memcached, nutcracker in front of
// them with pool's settings, writes keys through nutcracker and checks
// that the placement of the same settings finds every key.
func runNutcrackerCase(t *testing.T, pool nutcrackerPool, weights []int, names []string, keys [][]byte) {
	runNutcrackerCaseSpread(t, pool, weights, names, keys, true)
}

func runNutcrackerCaseSpread(t *testing.T, pool nutcrackerPool, weights []int, names []string, keys [][]byte, spread bool) {
	ss := startServers(t, len(weights))
	for i, s := range ss {
		n := nutcrackerServer{Addr: s.Addr, Weight: weights[i]}
		if names != nil {
			n.Name = names[i]
		}
		pool.Servers = append(pool.Servers, n)
	}
	proxy := nutcrackertest.Start(t, pool)
	memcachedtest.SetAll(t, proxy, keys)
	servers, addrs := placementServers(pool.Servers), addrsOf(ss)
	if pool.Distribution == ring.DistModula {
		// twemproxy counts modula's list in its own order (see
		// ring.TwemproxyOrder); list the backends so.
		order, err := ring.TwemproxyOrder(servers)
		if err != nil {
			t.Fatal(err)
		}
		servers, addrs = permute(servers, order), permute(addrs, order)
		t.Logf("twemproxy order %v", order)
	}
	p := mustPlacement(t, servers, ring.PlacementOptions{
		Distribution: pool.Distribution, Hash: pool.Hash, HashTag: pool.HashTag,
	})
	checkPlacement(t, p, addrs, keys, spread)
}

func TestNutcrackerKetama(t *testing.T) {
	keys := testKeys(compatKeys)
	t.Run("fnv1a_64", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "ketama", Hash: "fnv1a_64"}, []int{1, 1, 1}, nil, keys)
	})
	t.Run("md5", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "ketama", Hash: "md5"}, []int{1, 1, 1, 1}, nil, keys)
	})
	t.Run("named and weighted", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "ketama", Hash: "fnv1a_64"},
			[]int{1, 2, 3, 5}, []string{"cache-a", "cache-b", "10.1.2.3:11211", "server4"}, keys)
	})
	t.Run("md5 weighted", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "ketama", Hash: "md5"}, []int{3, 1, 7}, nil, keys)
	})
	t.Run("hash_tag", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "ketama", Hash: "fnv1a_64", HashTag: "{}"}, []int{1, 1, 1}, nil, keys)
	})
}

// Every key hash twemproxy offers, on ketama: the keys with bytes above
// 0x7f catch a hash that reads them unsigned where C reads a signed char.
func TestNutcrackerKeyHashes(t *testing.T) {
	keys := testKeys(1500)
	for _, h := range ring.HashNames() {
		t.Run(h, func(t *testing.T) {
			// crc32 keeps 15 bits, so on ketama's 32-bit circle every key
			// lands before the first point or two: one server takes all,
			// in twemproxy as here.
			runNutcrackerCaseSpread(t, nutcrackerPool{Distribution: "ketama", Hash: h}, []int{1, 1, 1}, nil, keys, h != ring.HashCRC32)
		})
	}
	t.Run("crc32 on modula", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "modula", Hash: ring.HashCRC32}, []int{1, 1, 1}, nil, keys)
	})
}

// permute returns s in the order of the indexes in order.
func permute[T any](s []T, order []int) []T {
	out := make([]T, len(order))
	for i, j := range order {
		out[i] = s[j]
	}
	return out
}

func TestNutcrackerModula(t *testing.T) {
	keys := testKeys(compatKeys)
	t.Run("fnv1a_64", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "modula", Hash: "fnv1a_64"}, []int{1, 1, 1}, nil, keys)
	})
	t.Run("crc32a weighted", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "modula", Hash: "crc32a"}, []int{2, 1, 3}, nil, keys)
	})
	// Names whose twemproxy order (shortest first) is not the config's:
	// mid, zeta, alpha.
	t.Run("named", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{Distribution: "modula", Hash: "fnv1a_64"}, []int{1, 2, 1}, []string{"zeta", "alpha", "mid"}, keys)
	})
}
