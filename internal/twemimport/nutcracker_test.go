package twemimport

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/nutcrackertest"
	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"github.com/mcproxy/mcproxy/ring"
)

// testKeyCount is how many keys each case writes through nutcracker.
const testKeyCount = 3000

// poolSpec is one server pool of a nutcracker.yml a case writes.
type poolSpec struct {
	name     string
	settings string   // the pool's lines besides listen and servers, two-space indented
	weights  []int    // one memcached per weight
	names    []string // a name per server ("" for none), or nil
	addrs    []string // the servers' addresses; nil: started on free ports
}

// The conversion of a realistic nutcracker.yml places every key where the
// real nutcracker put it: each case starts memcached servers and
// nutcracker, writes keys through every pool's listen port, converts the
// file and asks every server which keys it holds.
func TestConvertAgainstNutcracker(t *testing.T) {
	keys := testKeys(testKeyCount)
	t.Run("ketama fnv1a_64 named and weighted, beside a modula pool", func(t *testing.T) {
		runCase(t, []poolSpec{{
			name: "web",
			settings: "  hash: fnv1a_64\n  hash_tag: \"{}\"\n  distribution: ketama\n  timeout: 2000\n" +
				"  auto_eject_hosts: true\n  server_retry_timeout: 30000\n  server_failure_limit: 3\n" +
				"  preconnect: true\n  server_connections: 2\n",
			weights: []int{1, 2, 3, 1},
			names:   []string{"cache-a", "", "cache-c", ""},
		}, {
			name: "sessions",
			// Names whose twemproxy order (shorter first, then bytes) is
			// not the file's: modula counts in twemproxy's.
			settings: "  hash: fnv1a_64\n  distribution: modula\n  timeout: 2000\n  backlog: 1024\n",
			weights:  []int{2, 1, 1, 3},
			names:    []string{"zeta", "alpha", "mid", "b"},
		}}, keys)
	})
	t.Run("ketama md5", func(t *testing.T) {
		runCase(t, []poolSpec{{
			name:     "main",
			settings: "  hash: md5\n  distribution: ketama\n  timeout: 2000\n  auto_eject_hosts: false\n  client_connections: 4096\n",
			weights:  []int{1, 1, 1},
		}}, keys)
	})
	t.Run("modula crc32a unnamed", func(t *testing.T) {
		runCase(t, []poolSpec{{
			name:     "go-services",
			settings: "  hash: crc32a\n  distribution: modula\n  timeout: 2000\n",
			weights:  []int{1, 1, 1, 1, 1},
		}}, keys)
	})
}

// runCase starts the servers and nutcracker for specs, writes keys
// through each pool, converts the nutcracker.yml and checks every pool of
// the result against the servers.
func runCase(t *testing.T, specs []poolSpec, keys [][]byte) {
	for i := range specs {
		if specs[i].addrs == nil {
			for range specs[i].weights {
				specs[i].addrs = append(specs[i].addrs, memcachedtest.Start(t).Addr)
			}
		}
	}
	conf, listens := startNutcracker(t, specs)
	for _, l := range listens {
		memcachedtest.SetAll(t, l, keys)
	}
	out, err := Convert([]byte(conf), "nutcracker.yml")
	if err != nil {
		t.Fatalf("Convert: %v\n%s", err, conf)
	}
	cfg, err := config.Parse(out, "converted")
	if err != nil {
		t.Fatalf("the converted config does not load: %v\n%s", err, out)
	}
	t.Logf("nutcracker.yml:\n%s\nconverted:\n%s", conf, out)
	if cfg.Listen != listens[0] {
		t.Errorf("listen %s, want the first pool's %s", cfg.Listen, listens[0])
	}
	for i, spec := range specs {
		if i >= len(cfg.Pools) || cfg.Pools[i].Name != spec.name {
			t.Fatalf("converted pools %+v, want %s at %d", cfg.Pools, spec.name, i)
		}
		checkPool(t, cfg, cfg.Pools[i], keys)
	}
}

// checkPool asks each server of pool which keys it holds and fails unless
// every key is on exactly one server, the one the converted pool's
// placement names, and every server holds some.
func checkPool(t *testing.T, cfg config.Config, pool config.Pool, keys [][]byte) {
	t.Helper()
	p, err := ring.NewPlacement(config.PlacementServers(pool.Backends), cfg.Placement(pool))
	if err != nil {
		t.Fatal(err)
	}
	holder := map[string]string{}
	for _, b := range pool.Backends {
		found := getKeys(t, b.Addr, keys)
		if len(found) == 0 {
			t.Errorf("pool %s: server %s holds no key", pool.Name, b.Addr)
		}
		for k := range found {
			if h, twice := holder[k]; twice {
				t.Fatalf("pool %s: key %q on %s and %s", pool.Name, k, h, b.Addr)
			}
			holder[k] = b.Addr
		}
	}
	wrong := 0
	for _, k := range keys {
		want, ok := holder[string(k)]
		got := pool.Backends[p.Locate(k)].Addr
		if !ok || got != want {
			if wrong < 5 {
				t.Errorf("pool %s: key %q is on %q, the converted placement says %s", pool.Name, k, want, got)
			}
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("pool %s: %d of %d keys not where the converted config looks", pool.Name, wrong, len(keys))
	}
	t.Logf("pool %s (%s): all %d keys where nutcracker put them", pool.Name, pool.Distribution, len(keys)-wrong)
}

// startNutcracker writes the nutcracker.yml of specs with a free listen
// port per pool, starts nutcracker on it and returns the file's text and
// the listen addresses. It is killed at the end of the test.
func startNutcracker(t *testing.T, specs []poolSpec) (string, []string) {
	t.Helper()
	return nutcrackertest.StartConfig(t, func() (string, []string) { return nutcrackerConf(t, specs) })
}

// nutcrackerConf writes the nutcracker.yml of specs, each pool on a free
// port.
func nutcrackerConf(t *testing.T, specs []poolSpec) (string, []string) {
	var conf strings.Builder
	var listens []string
	for _, s := range specs {
		listen, err := childproc.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		listens = append(listens, listen)
		fmt.Fprintf(&conf, "%s:\n  listen: %s\n%s  servers:\n", s.name, listen, s.settings)
		for i, a := range s.addrs {
			fmt.Fprintf(&conf, "   - %s:%d", a, s.weights[i])
			if s.names != nil && s.names[i] != "" {
				fmt.Fprintf(&conf, " %s", s.names[i])
			}
			conf.WriteString("\n")
		}
		conf.WriteString("\n")
	}
	return conf.String(), listens
}

// testKeys returns n distinct keys of the shapes applications use, with
// bytes above 0x7f and hash-tagged keys among them.
func testKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		switch i % 5 {
		case 0:
			keys[i] = fmt.Appendf(nil, "%d", i)
		case 1:
			keys[i] = fmt.Appendf(nil, "user:%d:profile", i)
		case 2:
			keys[i] = fmt.Appendf(nil, "clé:%d:ключ\xff", i)
		case 3:
			keys[i] = fmt.Appendf(nil, "cart:{%d}:items:%d", i%97, i)
		case 4:
			keys[i] = fmt.Appendf(nil, "session/%08x/%s", i*2654435761, bytes.Repeat([]byte{'a' + byte(i%26)}, i%150))
		}
	}
	return keys
}

// getKeys asks the memcached at addr for keys, 100 at a time, and returns
// those it holds.
func getKeys(t *testing.T, addr string, keys [][]byte) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	memcachedtest.InBatches(t, addr, keys, func(batch [][]byte) []byte {
		cmd := []byte("get")
		for _, k := range batch {
			cmd = append(append(cmd, ' '), k...)
		}
		return append(cmd, "\r\n"...)
	}, func(r *bufio.Reader, batch [][]byte) {
		for range len(batch) + 1 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("get from %s: %v", addr, err)
			}
			if line == "END\r\n" {
				return
			}
			f := strings.Fields(line)
			n, err := strconv.Atoi(f[len(f)-1])
			if len(f) != 4 || f[0] != "VALUE" || err != nil {
				t.Fatalf("get from %s: %q", addr, line)
			}
			if _, err := r.Discard(n + 2); err != nil {
				t.Fatalf("get from %s: %v", addr, err)
			}
			found[f[1]] = true
		}
		t.Fatalf("get from %s: no END after %d values", addr, len(batch))
	})
	return found
}
