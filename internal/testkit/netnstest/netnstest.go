//go:build linux

// Package netnstest runs a test again in a private user and network
// namespace (unshare -rn), where 127.0.0.1 is a loopback of its own: for
// tests that need a fixed port, such as memcached's 11211, which on the
// machine belongs to whoever holds it.
package netnstest

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
	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"golang.org/x/sys/unix"
)

// inNetnsEnv marks the copy of the test binary that runs in the namespace.
const inNetnsEnv = "MCPROXY_TEST_IN_NETNS"

// Run runs the test named name (the caller) in a private network namespace
// and reports whether this is that run: the caller then does its work,
// with the namespace's loopback up. On the machine, Run starts the copy,
// waits for it within bound, fails t if it fails, and returns false.
func Run(t *testing.T, name string, bound time.Duration) bool {
	t.Helper()
	if os.Getenv(inNetnsEnv) != "" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("bring lo up in the namespace: %v", err)
		}
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare not installed (util-linux): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-rn", os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in a private network namespace (unshare -rn; needs user namespaces): %v\n%s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
	return false
}

// StartMemcachedOn starts memcached on 127.0.0.1:port, which only a test
// in its own network namespace can count on being free.
func StartMemcachedOn(t *testing.T, port int) string {
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
