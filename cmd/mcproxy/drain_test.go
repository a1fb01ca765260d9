package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

const drainConfig = "listen: %s\nbackends:\n  - %s\nhealth: {interval: 100ms, timeout: 100ms}\n"

// TestSIGTERMAnswersPipelinedCommands: 2000 sets written in one write, then
// SIGTERM at once: every set is answered STORED, the stream ends in a clean
// EOF (no reset), and mcproxy exits 0.
func TestSIGTERMAnswersPipelinedCommands(t *testing.T) {
	const n = 2000
	mc := memcachedtest.Start(t)
	p := startBinary(t, fmt.Sprintf(drainConfig, "%s", mc.Addr))
	c := dialAccepted(t, p.Listen)

	var stored atomic.Int64
	var got []byte
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			got = append(got, buf[:k]...)
			stored.Store(int64(bytes.Count(got, []byte("STORED\r\n"))))
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	var sets bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sets, "set sigterm:%d 0 0 10\r\n0123456789\r\n", i)
	}
	if _, err := c.Write(sets.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	before := stored.Load()
	err := <-readErr
	answered := time.Since(signalled)
	c.Close() // as a client does at EOF
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after %d STORED the stream ended with %v, want EOF", stored.Load(), err)
	}
	if want := bytes.Repeat([]byte("STORED\r\n"), n); !bytes.Equal(got, want) {
		t.Fatalf("%d of %d STORED before EOF (%d bytes)", stored.Load(), n, len(got))
	}
	code := p.WaitExitCode(t, memcachedtest.WaitBound+shutdownGrace)
	t.Logf("drain: %d of %d STORED before SIGTERM, %d after; EOF %v and exit %v after the signal",
		before, n, int64(n)-before, answered.Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit status %d, want 0\n%s", code, p.Output())
	}
	if !strings.Contains(p.Output(), "clients drained") {
		t.Errorf("no drain figures logged:\n%s", p.Output())
	}
	if k := memcachedtest.Stat(t, mc.Addr, "curr_items"); k != n {
		t.Errorf("backend holds %d items, want %d", k, n)
	}
}

// dialAccepted connects to addr and waits for the reply to a version, so
// the connection is accepted, not waiting in the backlog. It is closed at
// the end of the test.
func dialAccepted(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1)
	_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound + shutdownGrace))
	return c
}

// stuckDrain starts mcproxy with the given -shutdown-grace in front of a
// backend whose timeout is longer than any test, leaves a get owed on that
// backend frozen, and sends SIGTERM: the drain cannot finish by itself.
func stuckDrain(t *testing.T, grace time.Duration) *childproxy.TestProxy {
	t.Helper()
	mc := memcachedtest.Start(t)
	p := startBinary(t, fmt.Sprintf(drainConfig+"backend: {timeout: 60s}\n", "%s", mc.Addr),
		"-shutdown-grace", grace.String())
	c := dialAccepted(t, p.Listen)
	// A get: the backend connection must be up before the freeze, or its
	// dial check times out and the stuck get fails fast.
	memcachedtest.RoundTrip(t, c, "get warm\r\n", "END\r\n", 1)
	if err := mc.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Thaw() })
	if _, err := c.Write([]byte("get stuck\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecondSIGTERMExitsAtOnce: a drain stuck on a frozen backend (its
// timeout longer than the test) ends at a second SIGTERM, long before the
// grace, with a non-zero status.
func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	const grace = 60 * time.Second
	p := stuckDrain(t, grace)
	p.WaitOutput(t, "shutting down")
	if p.Exited() {
		t.Fatalf("mcproxy exited on the first SIGTERM with a reply still owed: %v\n%s", p.Err(), p.Output())
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	second := time.Now()
	code := p.WaitExitCode(t, grace/2)
	t.Logf("exit %v after the second SIGTERM, status %d", time.Since(second).Round(time.Millisecond), code)
	if code != exitForced {
		t.Fatalf("exit status %d, want %d\n%s", code, exitForced, p.Output())
	}
	if !strings.Contains(p.Output(), "second signal") {
		t.Errorf("no log line for the second signal:\n%s", p.Output())
	}
}

// TestGraceRunOutExitsNonZero: a drain that the grace cuts short (a reply
// stuck on a frozen backend) ends in a non-zero exit and says why.
func TestGraceRunOutExitsNonZero(t *testing.T) {
	p := stuckDrain(t, time.Second)
	if code := p.WaitExitCode(t, 30*time.Second); code == 0 {
		t.Fatalf("exit status 0 after the grace ran out\n%s", p.Output())
	}
	if !strings.Contains(p.Output(), "shutdown grace of 1s ran out") {
		t.Errorf("no log line saying the grace ran out:\n%s", p.Output())
	}
}
