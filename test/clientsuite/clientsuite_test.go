// Package clientsuite checks mcproxy against real client libraries in
// several languages: each script below drives memcached through its
// libraries and prints a transcript, and the transcript through mcproxy
// (in front of three memcached) must equal the one from memcached itself.
// libmemcached's memccapable runs its ASCII conformance tests through the
// proxy too.
//
// The libraries come from Debian packages, which `make deps` and .ci/run
// install: python3-pymemcache, python3-memcache, libcache-memcached-perl,
// libcache-memcached-fast-perl, php-cli, php-memcached, libmemcached-tools.
package clientsuite

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/inprocproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/proxy"
)

// clientTimeout bounds one client script run so nothing hangs.
const clientTimeout = 2 * time.Minute

type clientScript struct {
	name string
	cmd  []string // the host and port are appended
	// hint names the Debian packages a missing interpreter or library needs.
	hint string
}

var scripts = []clientScript{
	{"python", []string{"/usr/bin/python3", "clients.py"}, "python3-pymemcache python3-memcache"},
	{"perl", []string{"perl", "clients.pl"}, "libcache-memcached-perl libcache-memcached-fast-perl"},
	{"php", []string{"php", "clients.php"}, "php-cli php-memcached"},
}

func TestClientLibrariesSeeMemcached(t *testing.T) {
	direct := memcachedtest.Start(t)
	proxyAddr, backends := inprocproxy.Start(t, proxy.Options{FlushOnReadd: true})
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			want := runScript(t, sc, direct.Addr)
			got := runScript(t, sc, proxyAddr)
			if got != want {
				t.Errorf("%s clients see a difference\nmemcached:\n%s\nmcproxy:\n%s", sc.name, want, got)
			}
		})
	}
	// The scripts wrote hundreds of keys (and flushed some): check the
	// proxy spread what is left over all three backends.
	for _, addr := range backends {
		if n := memcachedtest.Stat(t, addr, "total_items"); n < 50 {
			t.Errorf("backend %s stored only %d items: keys are not spread", addr, n)
		}
	}
}

func TestMemccapableASCII(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		t.Fatalf("memccapable not installed (apt-get install libmemcached-tools): %v", err)
	}
	proxyAddr, _ := inprocproxy.Start(t, proxy.Options{FlushOnReadd: true})
	host, port, _ := net.SplitHostPort(proxyAddr)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-a", "-t", "5").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("All tests passed")) {
		t.Fatalf("memccapable -a through mcproxy: %v\n%s", err, out)
	}
}

func runScript(t *testing.T, sc clientScript, addr string) string {
	t.Helper()
	if _, err := exec.LookPath(sc.cmd[0]); err != nil {
		t.Fatalf("%s not installed (apt-get install %s): %v", sc.cmd[0], sc.hint, err)
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	args := append(append([]string{}, sc.cmd[1:]...), host, port)
	cmd := exec.CommandContext(ctx, sc.cmd[0], args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s against %s: %v\n%s\n(needs: %s)", sc.name, addr, err, stderr.String(), sc.hint)
	}
	return string(out)
}
