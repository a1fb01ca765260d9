package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// process is the mcproxy binary running as a child of the test.
type process struct {
	cmd    *exec.Cmd
	listen string
	logs   *syncBuffer
	exited chan struct{} // closed once cmd has been waited for
	err    error         // cmd.Wait's result, set before exited closes
}

// syncBuffer collects the child's log output for the test to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBinary builds mcproxy into a temporary directory and starts it on
// config (text with a %s for the listen address), with extra flags.
func startBinary(t *testing.T, config string, flags ...string) *process {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mcproxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	listen := freeAddr(t)
	path := filepath.Join(dir, "mcproxy.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(config, listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &process{listen: listen, logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-config", path, "-log-format", "console"}, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start mcproxy: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill() // the one we started, by its PID
			<-p.exited
		}
		if t.Failed() {
			t.Logf("mcproxy output:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(waitBound)
	for {
		c, err := net.DialTimeout("tcp", listen, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("mcproxy exited at start: %v\n%s", p.err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcproxy not listening on %s: %v", listen, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExit waits up to bound for the process to exit and returns its exit
// status.
func (p *process) waitExit(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(bound):
		t.Fatalf("mcproxy still running %v after the signal\n%s", bound, p.logs.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// waitLog polls the process's output for text.
func (p *process) waitLog(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(p.logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("mcproxy never logged %q:\n%s", text, p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const drainConfig = "listen: %s\nbackends:\n  - %s\nhealth: {interval: 100ms, timeout: 100ms}\n"

// TestSIGTERMAnswersPipelinedCommands: 2000 sets written in one write, then
// SIGTERM at once: every set is answered STORED, the stream ends in a clean
// EOF (no reset), and mcproxy exits 0.
func TestSIGTERMAnswersPipelinedCommands(t *testing.T) {
	const n = 2000
	mc := memctest.Start(t)
	p := startBinary(t, fmt.Sprintf(drainConfig, "%s", mc.Addr))
	c, err := net.DialTimeout("tcp", p.listen, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitBound + shutdownGrace))
	// A reply first: the connection is accepted, not waiting in the backlog.
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 256)); err != nil {
		t.Fatal(err)
	}

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
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	before := stored.Load()
	err = <-readErr
	answered := time.Since(signalled)
	c.Close() // as a client does at EOF
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after %d STORED the stream ended with %v, want EOF", stored.Load(), err)
	}
	if want := bytes.Repeat([]byte("STORED\r\n"), n); !bytes.Equal(got, want) {
		t.Fatalf("%d of %d STORED before EOF (%d bytes)", stored.Load(), n, len(got))
	}
	code := p.waitExit(t, waitBound+shutdownGrace)
	t.Logf("drain: %d of %d STORED before SIGTERM, %d after; EOF %v and exit %v after the signal",
		before, n, int64(n)-before, answered.Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit status %d, want 0\n%s", code, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "clients drained") {
		t.Errorf("no drain figures logged:\n%s", p.logs.String())
	}
	if k := memctest.Stat(t, mc.Addr, "curr_items"); k != n {
		t.Errorf("backend holds %d items, want %d", k, n)
	}
}

// TestSecondSIGTERMExitsAtOnce: a drain stuck on a frozen backend (its
// timeout longer than the test) ends at a second SIGTERM, long before the
// grace, with a non-zero status.
func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	mc := memctest.Start(t)
	const grace = 60 * time.Second
	p := startBinary(t, fmt.Sprintf(drainConfig+"backend: {timeout: 60s}\n", "%s", mc.Addr),
		"-shutdown-grace", grace.String())
	c, err := net.DialTimeout("tcp", p.listen, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A get, not a version: the backend connection must be up before the
	// freeze, or its dial check times out and the stuck get fails fast.
	if _, err := c.Write([]byte("get warm\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 256)); err != nil {
		t.Fatal(err)
	}
	if err := mc.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Thaw() }()
	if _, err := c.Write([]byte("get stuck\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "shutting down")
	select {
	case <-p.exited:
		t.Fatalf("mcproxy exited on the first SIGTERM with a reply still owed: %v\n%s", p.err, p.logs.String())
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	second := time.Now()
	code := p.waitExit(t, grace/2)
	t.Logf("exit %v after the second SIGTERM, status %d", time.Since(second).Round(time.Millisecond), code)
	if code != exitForced {
		t.Fatalf("exit status %d, want %d\n%s", code, exitForced, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "second signal") {
		t.Errorf("no log line for the second signal:\n%s", p.logs.String())
	}
}

// TestGraceRunOutExitsNonZero: a drain that the grace cuts short (a reply
// stuck on a frozen backend) ends in a non-zero exit and says why.
func TestGraceRunOutExitsNonZero(t *testing.T) {
	mc := memctest.Start(t)
	p := startBinary(t, fmt.Sprintf(drainConfig+"backend: {timeout: 60s}\n", "%s", mc.Addr), "-shutdown-grace", "1s")
	c, err := net.DialTimeout("tcp", p.listen, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A get, not a version: the backend connection must be up before the
	// freeze, or its dial check times out and the stuck get fails fast.
	if _, err := c.Write([]byte("get warm\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 256)); err != nil {
		t.Fatal(err)
	}
	if err := mc.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Thaw() }()
	if _, err := c.Write([]byte("get stuck\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t, 30*time.Second); code == 0 {
		t.Fatalf("exit status 0 after the grace ran out\n%s", p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "shutdown grace of 1s ran out") {
		t.Errorf("no log line saying the grace ran out:\n%s", p.logs.String())
	}
}
