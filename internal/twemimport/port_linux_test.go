//go:build linux

package twemimport

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

// inNetnsEnv marks the copy of the test binary that runs in a network
// namespace of its own.
const inNetnsEnv = "MCPROXY_TWEMIMPORT_TEST_IN_NETNS"

// An unnamed server on port 11211 is hashed by twemproxy's ketama as its
// host alone. Port 11211 belongs to whoever holds it on the machine, so
// the case runs again in a private user and network namespace (unshare
// -rn), where 127.0.0.1 is a loopback of its own (as ring's
// TestPort11211 does).
func TestConvertPort11211(t *testing.T) {
	if os.Getenv(inNetnsEnv) != "" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("bring lo up in the namespace: %v", err)
		}
		fixed := startMemcachedOn(t, 11211)
		others := []string{memcachedtest.Start(t).Addr, memcachedtest.Start(t).Addr}
		runCase(t, []poolSpec{{
			name:     "legacy",
			settings: "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n",
			weights:  []int{1, 1, 2},
			addrs:    append([]string{fixed}, others...),
		}}, testKeys(testKeyCount))
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare not installed (util-linux): %v", err)
	}
	// The copy's own steps are bounded; this bounds the whole.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-rn", os.Args[0], "-test.run=^TestConvertPort11211$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in a private network namespace (unshare -rn; needs user namespaces): %v\n%s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
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
