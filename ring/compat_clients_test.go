package ring_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os/exec"
	"strconv"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/ring"
)

// clientCase is one server list a client program shards over.
type clientCase struct {
	name    string
	weights []int
}

var clientCases = []clientCase{
	{"three equal", []int{1, 1, 1}},
	{"five weighted", []int{1, 2, 3, 1, 5}},
}

// runProgram runs a client program that writes the keys of keyfile over
// servers ("host:port:weight" each) and checks that it stored them all.
func runProgram(t *testing.T, bin, pkgs, script, keyfile string, servers []string, n int) {
	t.Helper()
	path := lookPath(t, bin, pkgs)
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{script, keyfile}, servers...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n(needs: %s; run `make deps`)", bin, script, err, stderr.String(), pkgs)
	}
	if want := fmt.Sprintf("stored %d\n", n); string(out) != want {
		t.Fatalf("%s %s printed %q, want %q\n%s", bin, script, out, want, stderr.String())
	}
}

// serverArgs returns "host:port:weight" for each server.
func serverArgs(addrs []string, weights []int) []string {
	args := make([]string, len(addrs))
	for i, a := range addrs {
		args[i] = a + ":" + strconv.Itoa(weights[i])
	}
	return args
}

// weighted returns the placement servers of addrs with weights.
func weighted(addrs []string, weights []int) []ring.Server {
	s := make([]ring.Server, len(addrs))
	for i, a := range addrs {
		s[i] = ring.Server{Addr: a, Weight: weights[i]}
	}
	return s
}

// php-memcached with OPT_LIBKETAMA_COMPATIBLE is libmemcached's weighted
// ketama with MD5 keys.
func TestPHPMemcachedLibketama(t *testing.T) {
	runScriptCases(t, "php", "php-cli php-memcached", "testdata/libketama.php", ring.DistLibketama)
}

// Dalli's ring: SHA1 points, CRC-32 keys, the last point at or below.
func TestDalliRing(t *testing.T) {
	runScriptCases(t, "ruby", "ruby ruby-dalli", "testdata/dalli.rb", ring.DistDalli)
}

// runScriptCases lets a client script write the keys over each of
// clientCases' server lists and checks that distribution dist finds them.
func runScriptCases(t *testing.T, bin, pkgs, script, dist string) {
	lookPath(t, bin, pkgs)
	keys := testKeys(compatKeys)
	keyfile := writeHexKeys(t, keys)
	for _, c := range clientCases {
		t.Run(c.name, func(t *testing.T) {
			addrs := addrsOf(startServers(t, len(c.weights)))
			runProgram(t, bin, pkgs, script, keyfile, serverArgs(addrs, c.weights), len(keys))
			p := mustPlacement(t, weighted(addrs, c.weights), ring.PlacementOptions{Distribution: dist})
			checkPlacement(t, p, addrs, keys, true)
		})
	}
}

// gomemcache's ServerList is crc32.ChecksumIEEE(key) % len(servers): modula
// with crc32a. It weighs a server by listing it again; listed next to
// each other, the copies are a modula weight.
func TestGomemcacheServerList(t *testing.T) {
	keys := testKeys(compatKeys)
	for _, c := range clientCases {
		t.Run(c.name, func(t *testing.T) {
			addrs := addrsOf(startServers(t, len(c.weights)))
			var list []string
			for i, a := range addrs {
				for w := 0; w < c.weights[i]; w++ {
					list = append(list, a)
				}
			}
			mc := memcache.New(list...)
			defer mc.Close()
			for _, k := range keys {
				if err := mc.Set(&memcache.Item{Key: string(k), Value: []byte("v")}); err != nil {
					t.Fatalf("gomemcache set %q: %v", k, err)
				}
			}
			p := mustPlacement(t, weighted(addrs, c.weights), ring.PlacementOptions{Distribution: ring.DistModula, Hash: ring.HashCRC32a})
			checkPlacement(t, p, addrs, keys, true)
		})
	}
}

// The "crc32(key) % len(servers)" sample everyone writes is the same
// placement; checked here against Go's own crc32 over the keys, the
// single-server case included (gomemcache and twemproxy skip the hash).
func TestModulaIsCRC32ModN(t *testing.T) {
	keys := testKeys(compatKeys)
	for n := 1; n <= 7; n++ {
		servers := make([]ring.Server, n)
		for i := range servers {
			servers[i] = ring.Server{Addr: "127.0.0.1:" + strconv.Itoa(20000+i)}
		}
		p := mustPlacement(t, servers, ring.PlacementOptions{Distribution: ring.DistModula, Hash: ring.HashCRC32a})
		for _, k := range keys {
			want := int(crc32.ChecksumIEEE(k) % uint32(n))
			if got := p.Locate(k); got != want {
				t.Fatalf("%d servers: Locate(%q) = %d, crc32 %% n = %d", n, k, got, want)
			}
		}
	}
}
