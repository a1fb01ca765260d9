package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"golang.org/x/sys/unix"
)

// The descriptor limit the tests run the proxy under, and how many clients
// connect at once: more than the limit, so that some must wait.
const (
	fdLimit   = 64
	fdClients = 80
)

// startLimited starts the mcproxy binary under a descriptor limit
// (RLIMIT_NOFILE) of nofile, through prlimit(1), with one event loop in
// front of backends.
func startLimited(t *testing.T, nofile int, backends ...string) *childproxy.TestProxy {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not in PATH")
	}
	bin := childproxy.ClusterTestBinary(t)
	listen := memcachedtest.FreeAddr(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: %s\nevent_loops: 1\nbackends:\n", listen)
	for _, b := range backends {
		fmt.Fprintf(&cfg, "  - %s\n", b)
	}
	cfg.WriteString("health: {interval: 100ms, timeout: 100ms}\n")
	path := filepath.Join(t.TempDir(), "mcproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// prlimit execs the proxy: the PID is the proxy's.
	return childproxy.StartT(t, prlimit, listen, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--",
		bin, "-config", path, "-log-format", "console")
}

// dialAll connects n clients to addr. The connections complete in the
// kernel whether or not the proxy accepts them: those past what it accepts
// wait in the listen backlog.
func dialAll(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, memcachedtest.WaitBound)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// fdKey and fdValue are client i's key and value.
func fdKey(i int) string   { return "fd-" + strconv.Itoa(i) }
func fdValue(i int) string { return "value-of-client-" + strconv.Itoa(i) }

// storeAtOnce has every client send its set at the same moment, read the
// reply and close; it fails the test unless every reply is STORED.
func storeAtOnce(t *testing.T, conns []net.Conn) {
	t.Helper()
	replies := make([]string, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
			v := fdValue(i)
			if _, err := fmt.Fprintf(c, "set %s 0 0 %d\r\n%s\r\n", fdKey(i), len(v), v); err != nil {
				replies[i] = err.Error()
				return
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				line += " (" + err.Error() + ")"
			}
			replies[i] = line
		}()
	}
	wg.Wait()
	failed := 0
	for i, r := range replies {
		if r != "STORED\r\n" {
			failed++
			t.Errorf("client %d: %q", i, r)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d clients not stored", failed, len(conns))
	}
}

// checkReadBack reads every client's value back through the proxy.
func checkReadBack(t *testing.T, addr string, n int) {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	for i := range n {
		v := fdValue(i)
		want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", fdKey(i), len(v), v)
		if got := memcachedtest.RoundTrip(t, c, "get "+fdKey(i)+"\r\n", "END\r\n", 1); got != want {
			t.Errorf("get %s: %q, want %q", fdKey(i), got, want)
		}
	}
}

// proxyStats reads "stats" on a connection the proxy has accepted.
func proxyStats(t *testing.T, c net.Conn) map[string]string {
	t.Helper()
	return memcachedtest.ParseStats(memcachedtest.RoundTrip(t, c, "stats\r\n", "END\r\n", 1))
}

// checkListenDisabled checks that stats count at least one pause in
// accepting, and time in it.
func checkListenDisabled(t *testing.T, addr string) {
	t.Helper()
	st := proxyStats(t, memcachedtest.Dial(t, addr))
	for _, name := range []string{"listen_disabled_num", "time_in_listen_disabled_us"} {
		if n, err := strconv.Atoi(st[name]); err != nil || n <= 0 {
			t.Errorf("stat %s = %q, want > 0", name, st[name])
		}
	}
	if st["accepting_conns"] != "1" {
		t.Errorf("accepting_conns = %q after the clients left, want 1", st["accepting_conns"])
	}
}

// TestDescriptorLimitQueuesClients runs mcproxy under a descriptor limit of
// 64 and connects 80 clients at once, which each send one set: the proxy
// accepts as many as its descriptor budget allows and leaves the others in
// the listen backlog until clients leave, so every set is stored, and
// stats show the pause in accepting.
func TestDescriptorLimitQueuesClients(t *testing.T) {
	var addrs []string
	for range 3 {
		addrs = append(addrs, memcachedtest.Start(t).Addr)
	}
	p := startLimited(t, fdLimit, addrs...)
	storeAtOnce(t, dialAll(t, p.Listen, fdClients))
	checkReadBack(t, p.Listen, fdClients)
	checkListenDisabled(t, p.Listen)
}

// TestDescriptorsRunOutStopsAccepting lowers the descriptor limit of a
// running mcproxy below its descriptor budget, so that accept itself fails
// with EMFILE: the proxy stops accepting until a client leaves, and every
// one of 80 clients connecting at once is still served.
func TestDescriptorsRunOutStopsAccepting(t *testing.T) {
	be := memcachedtest.Start(t)
	p := startLimited(t, fdLimit, be.Addr)
	c := memcachedtest.Dial(t, p.Listen)
	// A set, not a version (which the proxy answers itself): the backend
	// connection must be up before descriptors run out, or its dial fails.
	memcachedtest.RoundTrip(t, c, "set warm 0 0 1\r\nx\r\n", "STORED\r\n", 1)
	memcachedtest.WaitFor(t, "the backend to be up", func() bool {
		return memcachedtest.Stats(t, p.Listen, "backends")["backend:"+be.Addr+":state"] == "up"
	})
	open, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID()))
	if err != nil {
		t.Fatal(err)
	}
	// Room for a few more clients: far below the budget's client cap.
	lim := uint64(len(open) + 4)
	if err := unix.Prlimit(p.PID(), unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}, nil); err != nil {
		t.Fatal(err)
	}
	storeAtOnce(t, dialAll(t, p.Listen, fdClients))
	c.Close()
	checkReadBack(t, p.Listen, fdClients)
	checkListenDisabled(t, p.Listen)
	if out := p.Output(); !strings.Contains(out, "accept4: too many open files") {
		t.Errorf("no pause at EMFILE in the log:\n%s", out)
	}
}

// TestBackendReconnectsWhileClientsHoldDescriptors holds more idle clients
// than a descriptor limit of 64 allows, then kills and restarts the
// backend: the proxy reconnects to it (its connection, the health probe,
// the flush before it rejoins) from the descriptors the clients cannot
// take, and stores through it again while the clients still hold the rest.
func TestBackendReconnectsWhileClientsHoldDescriptors(t *testing.T) {
	be := memcachedtest.Start(t)
	p := startLimited(t, fdLimit, be.Addr)
	c := memcachedtest.Dial(t, p.Listen)
	memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1) // accepted before the others
	dialAll(t, p.Listen, fdClients)
	memcachedtest.WaitFor(t, "the clients to reach the descriptor cap", func() bool {
		return proxyStats(t, c)["accepting_conns"] == "0"
	})
	held := proxyStats(t, c)["curr_connections"]

	be.Kill()
	memcachedtest.WaitFor(t, "a set to fail with the backend gone", func() bool {
		return strings.HasPrefix(memcachedtest.RoundTrip(t, c, "set k 0 0 1\r\nx\r\n", "\r\n", 1), "SERVER_ERROR")
	})
	be.Restart(t)
	memcachedtest.WaitFor(t, "a set through the restarted backend", func() bool {
		return memcachedtest.RoundTrip(t, c, "set after 0 0 5\r\nagain\r\n", "\r\n", 1) == "STORED\r\n"
	})
	if got := memcachedtest.Send(t, be.Addr, "get after\r\n", "END\r\n", 1); got != "VALUE after 0 5\r\nagain\r\nEND\r\n" {
		t.Fatalf("the backend holds %q", got)
	}
	st := proxyStats(t, c)
	if st["accepting_conns"] != "0" || st["curr_connections"] != held {
		t.Errorf("accepting_conns %s, curr_connections %s: want the clients still at the cap, %s", st["accepting_conns"],
			st["curr_connections"], held)
	}
}
