package ring_test

// Helpers of the compatibility tests (compat_*_test.go): each test starts
// real memcached, lets a real program (nutcracker, php-memcached, Dalli,
// gomemcache) write keys through its own placement, then asks every key of
// the server the matching Placement names, straight from that memcached.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// compatKeys is how many keys each program writes in a case: thousands,
// so that every server owns many and a placement that is off by one point
// misses some.
const compatKeys = 3000

// programTimeout bounds one run of a client program.
const programTimeout = 2 * time.Minute

// testKeys returns n distinct keys valid in memcached's text protocol, of
// lengths 1 to about 200, a third of them with bytes above 0x7f (UTF-8 and
// bare high bytes, which C's signed char and some hashes treat specially),
// some with a {tag} inside.
func testKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		var k []byte
		switch i % 6 {
		case 0:
			k = fmt.Appendf(nil, "%d", i)
		case 1:
			k = fmt.Appendf(nil, "user:%d:profile", i)
		case 2:
			k = fmt.Appendf(nil, "clé:%d:ключ", i)
		case 3:
			k = fmt.Appendf(nil, "\xff\x80%d\xfe", i)
		case 4:
			k = fmt.Appendf(nil, "cart:{%d}:items", i%97)
			k = fmt.Appendf(k, ":%d", i)
		case 5:
			k = fmt.Appendf(nil, "session/%08x/", i*2654435761)
			k = append(k, bytes.Repeat([]byte{'a' + byte(i%26)}, i%180)...)
		}
		keys[i] = k
	}
	return keys
}

// writeHexKeys writes keys to a file, one hex-encoded key a line, for the
// client programs to read without quoting trouble, and returns its path.
func writeHexKeys(t *testing.T, keys [][]byte) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(hex.EncodeToString(k))
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "keys.hex")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServers starts n memcached on free loopback ports.
func startServers(t *testing.T, n int) []*memcachedtest.Server {
	t.Helper()
	ss := make([]*memcachedtest.Server, n)
	for i := range ss {
		ss[i] = memcachedtest.Start(t)
	}
	return ss
}

// lookPath finds a program the tests need or fails the test saying how to
// install it.
func lookPath(t *testing.T, name, pkgs string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed: run `make deps` (apt-get install %s): %v", name, pkgs, err)
	}
	return p
}

// checkPlacement asks each key of the server p names and fails unless
// every one is there, and unless the servers hold exactly the keys (so a
// key the program failed to write cannot pass unseen). With spread, every
// server must own keys too.
func checkPlacement(t *testing.T, p ring.Placement, addrs []string, keys [][]byte, spread bool) {
	t.Helper()
	if p.Len() != len(addrs) {
		t.Fatalf("placement has %d servers, want %d", p.Len(), len(addrs))
	}
	perServer := make([][][]byte, len(addrs))
	for _, k := range keys {
		i := p.Locate(k)
		perServer[i] = append(perServer[i], k)
	}
	missing, total := 0, 0
	for i, addr := range addrs {
		found := getKeys(t, addr, perServer[i])
		for _, k := range perServer[i] {
			if !found[string(k)] {
				if missing < 5 {
					t.Errorf("key %q: not on %s, where the placement puts it", k, addr)
				}
				missing++
			}
		}
		items := memcachedtest.Stat(t, addr, "curr_items")
		total += items
		if spread && items == 0 {
			t.Errorf("server %s holds no key", addr)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d keys missing where the placement puts them", missing, len(keys))
	}
	if total != len(keys) {
		t.Errorf("the servers hold %d items, the program wrote %d keys", total, len(keys))
	}
	t.Logf("%d keys found where the placement puts them; per server %v", len(keys)-missing, counts(perServer))
}

func counts(per [][][]byte) []int {
	c := make([]int, len(per))
	for i, ks := range per {
		c[i] = len(ks)
	}
	return c
}

// getKeys asks addr for keys with multi-gets and returns the set of keys
// it holds.
func getKeys(t *testing.T, addr string, keys [][]byte) map[string]bool {
	t.Helper()
	found := make(map[string]bool, len(keys))
	memcachedtest.InBatches(t, addr, keys, func(batch [][]byte) []byte {
		cmd := []byte("get")
		for _, k := range batch {
			cmd = append(append(cmd, ' '), k...)
		}
		return append(cmd, "\r\n"...)
	}, func(r *bufio.Reader, _ [][]byte) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("get from %s: read: %v", addr, err)
			}
			line = bytes.TrimSuffix(line, []byte("\r\n"))
			if string(line) == "END" {
				return
			}
			f := bytes.Fields(line)
			if len(f) < 4 || string(f[0]) != "VALUE" {
				t.Fatalf("get from %s: unexpected line %q", addr, line)
			}
			n, err := strconv.Atoi(string(f[3]))
			if err != nil {
				t.Fatalf("get from %s: bad length in %q", addr, line)
			}
			if _, err := r.Discard(n + 2); err != nil {
				t.Fatalf("get from %s: read value: %v", addr, err)
			}
			found[string(f[1])] = true
		}
	})
	return found
}

// addrsOf returns the servers' addresses.
func addrsOf(ss []*memcachedtest.Server) []string {
	a := make([]string, len(ss))
	for i, s := range ss {
		a[i] = s.Addr
	}
	return a
}

// mustPlacement builds a placement or fails the test.
func mustPlacement(t *testing.T, servers []ring.Server, o ring.PlacementOptions) ring.Placement {
	t.Helper()
	p, err := ring.NewPlacement(servers, o)
	if err != nil {
		t.Fatalf("NewPlacement(%v, %+v): %v", servers, o, err)
	}
	return p
}
