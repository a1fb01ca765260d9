// Package nutcrackertest runs twemproxy (nutcracker) on a free loopback
// port for tests that prove mcproxy places keys where twemproxy does.
package nutcrackertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/childproc"
)

// Server is one line of a twemproxy pool's servers list.
type Server struct {
	Addr   string
	Weight int
	Name   string // "" for none
}

// Pool is the part of a twemproxy pool config a test varies.
type Pool struct {
	Distribution, Hash, HashTag string
	Servers                     []Server
}

// Config returns pool as a nutcracker.yml listening on listen.
func (pool Pool) Config(listen string) string {
	var conf strings.Builder
	fmt.Fprintf(&conf, "pool:\n  listen: %s\n  distribution: %s\n  hash: %s\n", listen, pool.Distribution, pool.Hash)
	if pool.HashTag != "" {
		fmt.Fprintf(&conf, "  hash_tag: %q\n", pool.HashTag)
	}
	conf.WriteString("  timeout: 5000\n  auto_eject_hosts: false\n  server_connections: 1\n  servers:\n")
	for _, s := range pool.Servers {
		fmt.Fprintf(&conf, "   - %s:%d", s.Addr, s.Weight)
		if s.Name != "" {
			fmt.Fprintf(&conf, " %s", s.Name)
		}
		conf.WriteString("\n")
	}
	return conf.String()
}

// Start runs nutcracker with pool on a free loopback port and returns its
// address. It is killed at the end of the test.
func Start(t testing.TB, pool Pool) string {
	t.Helper()
	_, listens := StartConfig(t, func() (string, []string) {
		listen, err := childproc.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		return pool.Config(listen), []string{listen}
	})
	return listens[0]
}

// StartConfig runs nutcracker with the config conf writes, which listens
// on the addresses conf returns (it picks free ports; it is asked again if
// nutcracker does not start, since a free port may be taken meanwhile). It
// returns the config and the addresses once nutcracker accepts on each,
// and kills nutcracker at the end of the test.
func StartConfig(t testing.TB, conf func() (string, []string)) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("nutcracker")
	if err != nil {
		t.Fatalf("nutcracker not installed: run `make deps` (apt-get install nutcracker): %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < childproc.StartAttempts; attempt++ {
		text, listens := conf()
		path := filepath.Join(dir, "nutcracker.yml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		stats, err := childproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, "nutcracker.log")
		p, err := childproc.Start(bin, []string{"-c", path, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", logPath}, nil)
		if err != nil {
			t.Fatal(err)
		}
		lastErr = nil
		for _, l := range listens {
			if lastErr = p.WaitAccepting(l, 5*time.Second); lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			t.Cleanup(p.Kill)
			return text, listens
		}
		p.Kill()
		out, _ := os.ReadFile(logPath)
		lastErr = fmt.Errorf("%w\nconfig:\n%s\nlog:\n%s", lastErr, text, out)
	}
	t.Fatalf("start nutcracker: %v", lastErr)
	return "", nil
}
