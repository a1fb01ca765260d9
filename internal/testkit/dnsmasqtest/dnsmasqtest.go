// Package dnsmasqtest runs a real DNS server for tests: Debian's dnsmasq
// (package dnsmasq-base) on a free 127.0.0.1 port, answering only from
// records the test gives (SRV and A), authoritative for its zone (a name
// it has no record of is NXDOMAIN, as a headless Service with no ready pod
// is), asking no upstream. Records change by a restart, as a DNS server's
// do: the test's Restart kills dnsmasq by its PID and starts it again on
// the same port with the new records; Kill leaves it down (an outage).
package dnsmasqtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/tools/childproc"
)

// Zone is the domain the server answers for.
const Zone = "mc.test"

// SRV is one SRV record: Name's target Target (a name of Zone) at Port.
type SRV struct {
	Name, Target string
	Port, Weight int
}

// Records are what the server answers: SRV records, and A records (name to
// IPv4 address).
type Records struct {
	SRV []SRV
	A   map[string]string
}

// Server is a dnsmasq a test started.
type Server struct {
	// Addr is host:port, the resolver to give mcproxy.
	Addr string
	port int
	dir  string
	bin  string
	proc *childproc.Process
}

// Binary returns dnsmasq's path, or an error saying how to install it.
func Binary() (string, error) {
	for _, p := range []string{"dnsmasq", "/usr/sbin/dnsmasq"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("dnsmasq not found: install Debian's dnsmasq-base (make deps)")
}

// Start starts dnsmasq with recs on a free port and waits until it
// answers; it is killed at cleanup. The test fails if dnsmasq is missing
// (make deps installs it) or does not start.
func Start(t testing.TB, recs Records) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: childproc.LoopbackAddr(port), port: port, dir: t.TempDir(), bin: bin}
	t.Cleanup(s.Kill)
	s.Restart(t, recs)
	return s
}

// Restart kills dnsmasq, if it runs, and starts it again on the same port
// with recs, waiting until it answers.
func (s *Server) Restart(t testing.TB, recs Records) {
	t.Helper()
	s.Kill()
	conf := filepath.Join(s.dir, "dnsmasq.conf")
	if err := os.WriteFile(conf, []byte(recs.conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--no-daemon", "--port", strconv.Itoa(s.port), "--listen-address", "127.0.0.1",
		"--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=" + conf, "--pid-file",
		"--log-facility=-", "--local=/" + Zone + "/"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // no switch to a user the machine may lack
	}
	p, err := childproc.Start(s.bin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	r := s.Resolver()
	memcachedtest.WaitFor(t, "dnsmasq answering on "+s.Addr, func() bool {
		if p.Exited() {
			t.Fatalf("dnsmasq exited: %v", p.Err())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := r.LookupNetIP(ctx, "ip4", "ready."+Zone)
		var dnsErr *net.DNSError
		// NXDOMAIN is an answer: the server is up.
		return err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound)
	})
}

// Kill ends dnsmasq (SIGKILL by its PID) and waits for it: DNS is down
// until Restart.
func (s *Server) Kill() {
	if s.proc != nil {
		s.proc.Kill()
	}
}

// Resolver is a Go resolver asking this server only.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
}

// conf is the records as dnsmasq's config lines.
func (r Records) conf() string {
	var b strings.Builder
	for _, s := range r.SRV {
		fmt.Fprintf(&b, "srv-host=%s,%s,%d,0,%d\n", s.Name, s.Target, s.Port, s.Weight)
	}
	for name, ip := range r.A {
		fmt.Fprintf(&b, "host-record=%s,%s\n", name, ip)
	}
	return b.String()
}
