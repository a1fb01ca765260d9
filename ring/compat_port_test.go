//go:build linux

package ring_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/nutcrackertest"
	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"github.com/mcproxy/mcproxy/ring"
	"golang.org/x/sys/unix"
)

// inNetnsEnv marks the copy of the test binary that runs in a network
// namespace of its own.
const inNetnsEnv = "MCPROXY_RING_TEST_IN_NETNS"

// The port rule (a server on port 11211 hashes as its host alone, in
// twemproxy and in libmemcached) needs a memcached on port 11211 itself.
// That port belongs to whoever holds it on the machine (a memcached
// service, `make run`, a second run of this test), so the test runs again,
// in a private user and network namespace (unshare -rn), where 127.0.0.1
// is a loopback of its own and 11211 is always free.
func TestPort11211(t *testing.T) {
	if os.Getenv(inNetnsEnv) != "" {
		port11211InNetns(t)
		return
	}
	unshare := lookPath(t, "unshare", "util-linux")
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-rn", os.Args[0], "-test.run=^TestPort11211$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in a private network namespace (unshare -rn; needs user namespaces): %v\n%s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
}

// port11211InNetns runs in the namespace: loopback up, memcached on 11211
// and on free ports, then nutcracker (ketama) and php-memcached
// (libketama) write keys over them.
func port11211InNetns(t *testing.T) {
	if err := loopbackUp(); err != nil {
		t.Fatalf("bring lo up in the namespace: %v", err)
	}
	fixed := startMemcachedOn(t, 11211)
	others := startServers(t, 2)
	addrs := []string{fixed, others[0].Addr, others[1].Addr}
	keys := testKeys(compatKeys)

	t.Run("nutcracker ketama", func(t *testing.T) {
		pool := nutcrackerPool{Distribution: "ketama", Hash: "fnv1a_64"}
		for _, a := range addrs {
			pool.Servers = append(pool.Servers, nutcrackerServer{Addr: a, Weight: 1})
		}
		proxy := nutcrackertest.Start(t, pool)
		setThrough(t, proxy, keys)
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

// startMemcachedOn starts memcached on 127.0.0.1:port, which only a test
// in its own network namespace can count on being free.
func startMemcachedOn(t *testing.T, port int) string {
	t.Helper()
	bin, err := memcachedtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "1"}
	if syscall.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	p, err := childproc.Start(bin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	addr := childproc.LoopbackAddr(port)
	if err := p.WaitAccepting(addr, 5*time.Second); err != nil {
		t.Fatalf("memcached on %s: %v", addr, err)
	}
	return addr
}

// loopbackUp sets the namespace's lo interface up; a new network
// namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set flags: %w", err)
	}
	return nil
}
