package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// upgradeConfig is the config both processes of an upgrade run: listen,
// admin, upgrade socket, backend.
const upgradeConfig = "listen: %s\nadmin: %s\nreuse_port: true\nupgrade_socket: %s\n" +
	"backends:\n  - %s\nhealth: {interval: 100ms, timeout: 100ms}\n"

// upgradeClients is the load an upgrade runs under: clients that keep
// their connection (a raw client pipelining batches of commands, gomemcache
// with its pool of idle connections) and clients that open a connection
// per command pair. Each checks every reply and counts its rounds.
type upgradeClients struct {
	addr   string
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	rounds [3]atomic.Int64 // pipelining, gomemcache, connection per pair
	mu     sync.Mutex
	errs   []string
}

func startUpgradeClients(t *testing.T, addr string) *upgradeClients {
	ctx, stop := context.WithCancel(context.Background())
	u := &upgradeClients{addr: addr, ctx: ctx, stop: stop}
	c := dialAccepted(t, addr) // the pipelining client's one connection
	u.run(func() { u.pipeline(c) })
	for i := range 2 {
		u.run(func() { u.gomemcache(i) })
		u.run(func() { u.perPair(i) })
	}
	t.Cleanup(u.halt)
	return u
}

func (u *upgradeClients) run(f func()) {
	u.wg.Add(1)
	go func() { defer u.wg.Done(); f() }()
}

func (u *upgradeClients) halt() { u.stop(); u.wg.Wait() }

func (u *upgradeClients) fail(format string, args ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.errs) < 20 {
		u.errs = append(u.errs, fmt.Sprintf(format, args...))
	}
}

func (u *upgradeClients) errors() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.errs...)
}

// pipeline streams batches of 32 set/get pairs on its one connection,
// each in one write, without waiting for replies (up to 64 batches ahead),
// and checks the replies of each in order: a connection handed over in
// the middle of the stream must lose, repeat or reorder nothing. The
// proxy always holds commands read and not yet parsed (a session runs
// limits.reqs_per_event, 20, per turn), so they go over with the socket.
func (u *upgradeClients) pipeline(c net.Conn) {
	written := make(chan int, 64)
	u.run(func() {
		defer close(written)
		var batch bytes.Buffer
		for round := 0; u.ctx.Err() == nil; round++ {
			batch.Reset()
			for i := range 32 {
				v := fmt.Sprintf("r%d-%d", round, i)
				fmt.Fprintf(&batch, "set up:pipe:%d 0 0 %d\r\n%s\r\nget up:pipe:%d\r\n", i, len(v), v, i)
			}
			_ = c.SetWriteDeadline(time.Now().Add(memcachedtest.WaitBound))
			if _, err := c.Write(batch.Bytes()); err != nil {
				u.fail("pipelining client, round %d: write: %v", round, err)
				return
			}
			select {
			case written <- round:
			case <-u.ctx.Done():
				return
			}
		}
	})
	r := bufio.NewReader(c)
	var want bytes.Buffer
	for round := range written {
		want.Reset()
		for i := range 32 {
			v := fmt.Sprintf("r%d-%d", round, i)
			fmt.Fprintf(&want, "STORED\r\nVALUE up:pipe:%d 0 %d\r\n%s\r\nEND\r\n", i, len(v), v)
		}
		_ = c.SetReadDeadline(time.Now().Add(memcachedtest.WaitBound))
		got := make([]byte, want.Len())
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want.Bytes()) {
			u.fail("pipelining client, round %d: got %.200q (%v), want %.200q", round, got, err, want.Bytes())
			return
		}
		u.rounds[0].Add(1)
	}
}

// gomemcache sets and gets keys of its own through gomemcache's pool.
func (u *upgradeClients) gomemcache(id int) {
	mc := memcache.New(u.addr)
	mc.Timeout = memcachedtest.WaitBound
	defer mc.Close()
	for round := 0; u.ctx.Err() == nil; round++ {
		key, val := fmt.Sprintf("up:gm:%d:%d", id, round%50), fmt.Sprintf("v%d", round)
		if err := mc.Set(&memcache.Item{Key: key, Value: []byte(val)}); err != nil {
			u.fail("gomemcache %d, round %d: set: %v", id, round, err)
			return
		}
		it, err := mc.Get(key)
		if err != nil || string(it.Value) != val {
			u.fail("gomemcache %d, round %d: get: %v %+v, want %q", id, round, err, it, val)
			return
		}
		u.rounds[1].Add(1)
	}
}

// perPair opens a connection for each set/get pair: some of them connect
// while the listeners change hands.
func (u *upgradeClients) perPair(id int) {
	for round := 0; u.ctx.Err() == nil; round++ {
		val := fmt.Sprintf("p%d", round)
		c, err := net.DialTimeout("tcp", u.addr, memcachedtest.WaitBound)
		if err != nil {
			u.fail("per-pair client %d, round %d: dial: %v", id, round, err)
			return
		}
		_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
		fmt.Fprintf(c, "set up:pair:%d 0 0 %d\r\n%s\r\nget up:pair:%d\r\n", id, len(val), val, id)
		want := fmt.Sprintf("STORED\r\nVALUE up:pair:%d 0 %d\r\n%s\r\nEND\r\n", id, len(val), val)
		got := make([]byte, len(want))
		_, err = io.ReadFull(c, got)
		c.Close()
		if err != nil || string(got) != want {
			u.fail("per-pair client %d, round %d: got %q (%v), want %q", id, round, got, err, want)
			return
		}
		u.rounds[2].Add(1)
	}
}

// waitRounds waits until every kind of client has done n more rounds than
// it had when called.
func (u *upgradeClients) waitRounds(t *testing.T, step string, n int64) {
	t.Helper()
	var base [3]int64
	for i := range base {
		base[i] = u.rounds[i].Load()
	}
	memcachedtest.WaitFor(t, fmt.Sprintf("%d rounds of every client %s", n, step), func() bool {
		if errs := u.errors(); len(errs) > 0 {
			t.Fatalf("%s: clients failed:\n%s", step, strings.Join(errs, "\n"))
		}
		for i := range base {
			if u.rounds[i].Load() < base[i]+n {
				return false
			}
		}
		return true
	})
}

// TestUpgradeHandsClientsOver: an mcproxy under load from clients that keep
// their connections and clients that connect for each command pair; a
// second mcproxy started with the same config takes the listeners and the
// clients over. No client sees an error or a wrong reply, the connections
// kept go on in the new process (the pipelining client never reconnects),
// the old process exits 0 and the new one serves; then a third takes over
// from the second the same way.
func TestUpgradeHandsClientsOver(t *testing.T) {
	mc := memcachedtest.Start(t)
	dir := t.TempDir()
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	path := filepath.Join(dir, "mcproxy.yaml")
	conf := fmt.Sprintf(upgradeConfig, listen, admin, filepath.Join(dir, "upgrade.sock"), mc.Addr)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := childproxy.BuildT(t)
	args := []string{"-config", path, "-log-format", "console"}
	old := childproxy.StartT(t, bin, listen, args...)
	clients := startUpgradeClients(t, listen)
	clients.waitRounds(t, "before the upgrade", 20)

	for gen := 1; gen <= 2; gen++ {
		next := childproxy.StartT(t, bin, listen, args...)
		if code := old.WaitExitCode(t, memcachedtest.WaitBound); code != 0 {
			t.Fatalf("upgrade %d: the old process exited %d, want 0\n%s", gen, code, old.Output())
		}
		next.WaitOutput(t, "took clients over from the old process")
		clients.waitRounds(t, fmt.Sprintf("after upgrade %d, with the old process gone", gen), 20)
		if n := memcachedtest.Stat(t, listen, "clients_adopted"); n < 1 {
			t.Errorf("upgrade %d: stats clients_adopted = %d in the new process", gen, n)
		}
		if out := old.Output(); !strings.Contains(out, "kept_to_drain\": 0") {
			t.Errorf("upgrade %d: the old process kept clients to drain:\n%s", gen, out)
		}
		t.Logf("upgrade %d: rounds so far (pipelining, gomemcache, per pair): %d %d %d", gen,
			clients.rounds[0].Load(), clients.rounds[1].Load(), clients.rounds[2].Load())
		old = next
	}
	clients.halt()
	if errs := clients.errors(); len(errs) > 0 {
		t.Fatalf("clients failed:\n%s", strings.Join(errs, "\n"))
	}
}

// TestUpgradeKeepsClientsThatReachNoBoundary: two clients never reach a
// command boundary within the old process's drain grace (3s): one stops in
// the middle of a data block, one waits for a backend that is frozen
// (SIGSTOP) and is answered only at the backend timeout (4s, which falls
// after the handover's grace and within the drain's). The old process hands
// an idle client over, gives up on the two when the grace runs out, and
// drains them as SIGTERM would: the first reads EOF, the second its misses
// and then EOF. It exits 0; the idle client is served by the new process.
func TestUpgradeKeepsClientsThatReachNoBoundary(t *testing.T) {
	const grace = 3 * time.Second
	mc := memcachedtest.Start(t)
	dir := t.TempDir()
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	path := filepath.Join(dir, "mcproxy.yaml")
	conf := fmt.Sprintf(upgradeConfig, listen, admin, filepath.Join(dir, "upgrade.sock"), mc.Addr) +
		"backend: {timeout: 4s}\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := childproxy.BuildT(t)
	args := []string{"-config", path, "-log-format", "console", "-shutdown-grace", grace.String()}
	old := childproxy.StartT(t, bin, listen, args...)
	midBlock, waiting, idle := dialAccepted(t, listen), dialAccepted(t, listen), dialAccepted(t, listen)
	// A get on each: the backend connection of each client's loop must be
	// up before the freeze, or its dial check times out and the waiting
	// client's gets fail fast, reaching a boundary (as in stuckDrain).
	for _, c := range []net.Conn{midBlock, waiting, idle} {
		memcachedtest.RoundTrip(t, c, "get warm\r\n", "END\r\n", 1)
	}
	if _, err := midBlock.Write([]byte("set stuck 0 0 10\r\nabc")); err != nil {
		t.Fatal(err)
	}
	if err := mc.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Thaw() })
	if _, err := waiting.Write([]byte("get frozen:1\r\nget frozen:2\r\n")); err != nil {
		t.Fatal(err)
	}

	next := childproxy.StartT(t, bin, listen, args...)
	// A command sent once the handover is under way waits, unread, for the
	// session to be given up on, and is then run and answered here.
	old.WaitOutput(t, "handing them over")
	if _, err := waiting.Write([]byte("get frozen:3\r\n")); err != nil {
		t.Fatal(err)
	}
	if code := old.WaitExitCode(t, memcachedtest.WaitBound); code != 0 {
		t.Fatalf("the old process exited %d, want 0\n%s", code, old.Output())
	}
	if out := old.Output(); !strings.Contains(out, `"clients": 1, "kept_to_drain": 2`) {
		t.Errorf("the old process should have handed one client over and kept two:\n%s", out)
	}
	for name, c := range map[string]net.Conn{"mid-block": midBlock, "waiting": waiting} {
		got, err := io.ReadAll(c)
		if want := map[string]string{"mid-block": "", "waiting": "END\r\nEND\r\nEND\r\n"}[name]; err != nil || string(got) != want {
			t.Errorf("the %s client read %q and %v, want %q and EOF", name, got, err, want)
		}
	}
	if err := mc.Thaw(); err != nil {
		t.Fatal(err)
	}
	memcachedtest.RoundTrip(t, idle, "set idle 0 0 1\r\nx\r\nget idle\r\n", "END\r\n", 1)
	next.WaitOutput(t, `took clients over from the old process	{"clients": 1}`)
}
