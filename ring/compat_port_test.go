//go:build linux

package ring_test

import (
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/netnstest"
	"github.com/mcproxy/mcproxy/internal/testkit/nutcrackertest"
	"github.com/mcproxy/mcproxy/ring"
)

// The port rule (a server on port 11211 hashes as its host alone, in
// twemproxy and in libmemcached) needs a memcached on port 11211 itself.
// That port belongs to whoever holds it on the machine (a memcached
// service, `make run`, a second run of this test), so the test runs again
// in a private network namespace, where 11211 is always free.
func TestPort11211(t *testing.T) {
	if netnstest.Run(t, "TestPort11211", programTimeout) {
		port11211InNetns(t)
	}
}

// port11211InNetns runs in the namespace: loopback up, memcached on 11211
// and on free ports, then nutcracker (ketama) and php-memcached
// (libketama) write keys over them.
func port11211InNetns(t *testing.T) {
	fixed := netnstest.StartMemcachedOn(t, 11211)
	others := startServers(t, 2)
	addrs := []string{fixed, others[0].Addr, others[1].Addr}
	keys := testKeys(compatKeys)

	t.Run("nutcracker ketama", func(t *testing.T) {
		pool := nutcrackerPool{Distribution: "ketama", Hash: "fnv1a_64"}
		for _, a := range addrs {
			pool.Servers = append(pool.Servers, nutcrackerServer{Addr: a, Weight: 1})
		}
		proxy := nutcrackertest.Start(t, pool)
		memcachedtest.SetAll(t, proxy, keys)
		p := mustPlacement(t, placementServers(pool.Servers), ring.PlacementOptions{Distribution: ring.DistKetama})
		checkPlacement(t, p, addrs, keys, true)
		// The rule made a difference: hashed as "127.0.0.1:11211" the
		// server would own other keys.
		named := placementServers(pool.Servers)
		named[0].Name = fixed
		assertMoves(t, p, mustPlacement(t, named, ring.PlacementOptions{Distribution: ring.DistKetama}), keys)
		flushAll(t, addrs)
	})
	t.Run("php-memcached libketama", func(t *testing.T) {
		lookPath(t, "php", "php-cli php-memcached")
		weights := []int{1, 1, 1}
		runProgram(t, "php", "php-cli php-memcached", "testdata/libketama.php", writeHexKeys(t, keys), serverArgs(addrs, weights), len(keys))
		p := mustPlacement(t, weighted(addrs, weights), ring.PlacementOptions{Distribution: ring.DistLibketama})
		checkPlacement(t, p, addrs, keys, true)
		named := weighted(addrs, weights)
		named[0].Name = fixed
		assertMoves(t, p, mustPlacement(t, named, ring.PlacementOptions{Distribution: ring.DistLibketama}), keys)
		flushAll(t, addrs)
	})
}

// assertMoves fails unless a and b place some key differently.
func assertMoves(t *testing.T, a, b ring.Placement, keys [][]byte) {
	t.Helper()
	for _, k := range keys {
		if a.Locate(k) != b.Locate(k) {
			return
		}
	}
	t.Errorf("hashing the server on 11211 with its port moves no key: the case proves nothing")
}

// flushAll empties the servers for the next case, and waits until they
// report no items.
func flushAll(t *testing.T, addrs []string) {
	t.Helper()
	for _, a := range addrs {
		memcachedtest.Send(t, a, "flush_all\r\n", "OK\r\n", 1)
	}
	memcachedtest.WaitFor(t, "servers empty after flush_all", func() bool {
		for _, a := range addrs {
			if memcachedtest.Stat(t, a, "curr_items") != 0 {
				return false
			}
		}
		return true
	})
}
