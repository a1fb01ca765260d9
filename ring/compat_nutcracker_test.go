package ring_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"github.com/mcproxy/mcproxy/ring"
)

// nutcrackerServer is one line of a twemproxy pool's servers list.
type nutcrackerServer struct {
	addr   string
	weight int
	name   string // "" for none
}

// nutcrackerPool is the part of a twemproxy pool config a case varies.
type nutcrackerPool struct {
	distribution, hash, hashTag string
	servers                     []nutcrackerServer
}

// startNutcracker runs nutcracker (twemproxy) with pool on a free loopback
// port and returns its address. It is killed at the end of the test.
func startNutcracker(t *testing.T, pool nutcrackerPool) string {
	t.Helper()
	bin := lookPath(t, "nutcracker", "nutcracker")
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < childproc.StartAttempts; attempt++ {
		listen, err := childproc.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		stats, err := childproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		var conf strings.Builder
		fmt.Fprintf(&conf, "pool:\n  listen: %s\n  distribution: %s\n  hash: %s\n", listen, pool.distribution, pool.hash)
		if pool.hashTag != "" {
			fmt.Fprintf(&conf, "  hash_tag: %q\n", pool.hashTag)
		}
		conf.WriteString("  timeout: 5000\n  auto_eject_hosts: false\n  server_connections: 1\n  servers:\n")
		for _, s := range pool.servers {
			fmt.Fprintf(&conf, "   - %s:%d", s.addr, s.weight)
			if s.name != "" {
				fmt.Fprintf(&conf, " %s", s.name)
			}
			conf.WriteString("\n")
		}
		path := filepath.Join(dir, "nutcracker.yml")
		if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, "nutcracker.log"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := childproc.Start(bin, []string{"-c", path, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", log.Name()}, nil)
		log.Close()
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = p.WaitAccepting(listen, 5*time.Second); lastErr == nil {
			t.Cleanup(p.Kill)
			return listen
		}
		p.Kill()
		out, _ := os.ReadFile(log.Name())
		lastErr = fmt.Errorf("%w\nconfig:\n%s\nlog:\n%s", lastErr, conf.String(), out)
	}
	t.Fatalf("start nutcracker: %v", lastErr)
	return ""
}

// setThrough stores every key through the proxy at addr, pipelined, and
// fails unless each is STORED.
func setThrough(t *testing.T, addr string, keys [][]byte) {
	t.Helper()
	inBatches(t, addr, keys, func(batch [][]byte) []byte {
		var cmd []byte
		for _, k := range batch {
			cmd = append(append(append(cmd, "set "...), k...), " 0 0 1\r\nv\r\n"...)
		}
		return cmd
	}, func(r *bufio.Reader, batch [][]byte) {
		for _, k := range batch {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("set %q through %s: %v", k, addr, err)
			}
			if !bytes.Equal(line, []byte("STORED\r\n")) {
				t.Fatalf("set %q through %s: %q", k, addr, line)
			}
		}
	})
}

// placementServers turns a twemproxy servers list into Placement servers:
// the same address, weight and name.
func placementServers(ns []nutcrackerServer) []ring.Server {
	s := make([]ring.Server, len(ns))
	for i, n := range ns {
		s[i] = ring.Server{Name: n.name, Addr: n.addr, Weight: n.weight}
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
		n := nutcrackerServer{addr: s.Addr, weight: weights[i]}
		if names != nil {
			n.name = names[i]
		}
		pool.servers = append(pool.servers, n)
	}
	proxy := startNutcracker(t, pool)
	setThrough(t, proxy, keys)
	servers, addrs := placementServers(pool.servers), addrsOf(ss)
	if pool.distribution == ring.DistModula {
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
		Distribution: pool.distribution, Hash: pool.hash, HashTag: pool.hashTag,
	})
	checkPlacement(t, p, addrs, keys, spread)
}

func TestNutcrackerKetama(t *testing.T) {
	keys := testKeys(compatKeys)
	t.Run("fnv1a_64", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "ketama", hash: "fnv1a_64"}, []int{1, 1, 1}, nil, keys)
	})
	t.Run("md5", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "ketama", hash: "md5"}, []int{1, 1, 1, 1}, nil, keys)
	})
	t.Run("named and weighted", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "ketama", hash: "fnv1a_64"},
			[]int{1, 2, 3, 5}, []string{"cache-a", "cache-b", "10.1.2.3:11211", "server4"}, keys)
	})
	t.Run("md5 weighted", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "ketama", hash: "md5"}, []int{3, 1, 7}, nil, keys)
	})
	t.Run("hash_tag", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "ketama", hash: "fnv1a_64", hashTag: "{}"}, []int{1, 1, 1}, nil, keys)
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
			runNutcrackerCaseSpread(t, nutcrackerPool{distribution: "ketama", hash: h}, []int{1, 1, 1}, nil, keys, h != ring.HashCRC32)
		})
	}
	t.Run("crc32 on modula", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "modula", hash: ring.HashCRC32}, []int{1, 1, 1}, nil, keys)
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
		runNutcrackerCase(t, nutcrackerPool{distribution: "modula", hash: "fnv1a_64"}, []int{1, 1, 1}, nil, keys)
	})
	t.Run("crc32a weighted", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "modula", hash: "crc32a"}, []int{2, 1, 3}, nil, keys)
	})
	// Names whose twemproxy order (shortest first) is not the config's:
	// mid, zeta, alpha.
	t.Run("named", func(t *testing.T) {
		runNutcrackerCase(t, nutcrackerPool{distribution: "modula", hash: "fnv1a_64"}, []int{1, 2, 1}, []string{"zeta", "alpha", "mid"}, keys)
	})
}
