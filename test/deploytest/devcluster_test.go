package deploytest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"golang.org/x/sys/unix"
)

// TestMakeRunCtrlCDrains runs `make run` as a person does, on a terminal (a
// pseudo-terminal that is the controlling terminal of its session), with
// three real memcached on free ports named by a config given with CONFIG=.
// A client holds a connection open. Then the terminal's interrupt character
// is typed: mcproxy must get one signal, drain (the client reads every reply
// and then EOF), and everything must exit 0, with no "second signal" line
// and no "Interrupt" or "Error" from make. Before the fix mcproxy got the
// terminal's SIGINT and the script's SIGTERM 4 ms later, and cut the drain
// short in most runs.
func TestMakeRunCtrlCDrains(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not on PATH")
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("memcached not on PATH (devcluster.sh would install it with apt-get)")
	}
	bin := buildMcproxy(t)
	dir := t.TempDir()
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	var backends []string
	for range 3 {
		backends = append(backends, memcachedtest.FreeAddr(t))
	}
	cfg := filepath.Join(dir, "mine.yaml")
	writeFile(t, cfg, fmt.Sprintf("listen: %s\nadmin: %s\nbackends:\n  - addr: %s\n  - addr: %s\n  - addr: %s\n",
		listen, admin, backends[0], backends[1], backends[2]))

	term := openPTY(t)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	// -o build: the test's own build stands in for `make build`.
	cmd := exec.Command(makeBin, "-C", root, "-o", "build", "run", "BIN="+bin, "CONFIG="+cfg)
	cmd.Env = withoutEnv(os.Environ(), "MEMCACHED_PORTS", "MAKEFLAGS", "MFLAGS")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term.slave.Close()            // the children hold it now; EOF (EIO) on the master once they are gone
	exited := make(chan struct{}) // closed once make has exited; then waitErr is its status
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	out := term.collect(t)
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			// Still running after a failure: end make's whole session, which
			// the test created (Setsid), by its ID.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("terminal:\n%s", out.String())
		}
	})

	memcachedtest.WaitFor(t, "make run to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("make run exited before it was ready: %v", waitErr)
		default:
		}
		return strings.Contains(out.String(), "devcluster: ready")
	})
	for _, b := range backends {
		if got := memcachedtest.Stats(t, b, "")["pid"]; got == "" {
			t.Fatalf("no memcached started on %s, a backend of %s", b, cfg)
		}
	}
	c := memcachedtest.Dial(t, listen)
	memcachedtest.RoundTrip(t, c, "set k 0 0 1\r\nv\r\n", "STORED\r\n", 1)

	intr := term.interruptChar(t)
	if _, err := term.master.Write([]byte{intr}); err != nil {
		t.Fatal(err)
	}
	typed := time.Now()
	// The client is drained: it may still send, then reads EOF, not a reset.
	if got := memcachedtest.RoundTrip(t, c, "get k\r\n", "END\r\n", 1); got != "VALUE k 0 1\r\nv\r\nEND\r\n" {
		t.Fatalf("get after Ctrl-C: %q", got)
	}
	if err := c.SetReadDeadline(time.Now().Add(memcachedtest.WaitBound)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 64)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the drain the client read %d bytes, %v; want EOF", n, err)
	}
	c.Close()

	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("make run after Ctrl-C: %v, want exit 0", waitErr)
		}
	case <-time.After(memcachedtest.WaitBound):
		t.Fatalf("make run still running %v after Ctrl-C", memcachedtest.WaitBound)
	}
	t.Logf("make run exited 0 %v after Ctrl-C", time.Since(typed).Round(time.Millisecond))
	term.wait(t)
	text := out.String()
	for _, want := range []string{"signal received: stopping", "clients drained", "mcproxy stopped", "mcproxy exited with status 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal lacks %q", want)
		}
	}
	for _, bad := range []string{"second signal", "SIGKILL", "Interrupt", "Error"} {
		if strings.Contains(text, bad) {
			t.Errorf("terminal shows %q", bad)
		}
	}
	if n := strings.Count(text, "signal received"); n != 1 {
		t.Errorf("mcproxy logged %d signals, want 1", n)
	}
	for _, a := range append(backends, listen, admin) {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts after make run exited", a)
		}
	}
}

// buildMcproxy is the binary the other tests run (built once per test run),
// by an absolute path: make runs in the repository root.
func buildMcproxy(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(childproxy.BuildT(t))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// pty is a pseudo-terminal: the test holds the master, the child gets the
// slave as its controlling terminal.
type pty struct {
	fd     int      // the master's descriptor, for ioctls (Fd() would make it blocking)
	master *os.File // non-blocking, on Go's poller: reads end when it closes
	slave  *os.File
	done   chan struct{} // closed when collect's reader has ended
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("pty number: %v", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	p := &pty{fd: fd, master: os.NewFile(uintptr(fd), "ptmx"), done: make(chan struct{})}
	p.slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		p.master.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() {
		p.slave.Close()
		p.master.Close()
	})
	return p
}

// collect copies what the terminal shows into a file until every slave
// is closed (the master reads EIO) or the master is closed.
func (p *pty) collect(t *testing.T) outputFile {
	out := newOutputFile(t, "terminal")
	go func() {
		defer close(p.done)
		_, _ = io.Copy(out.File, p.master)
	}()
	return out
}

// wait waits, bounded, for collect's reader to have read everything.
func (p *pty) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(memcachedtest.WaitBound):
		t.Errorf("the terminal is still open %v after make exited: a child of make run is left", memcachedtest.WaitBound)
		p.master.Close()
		<-p.done
	}
}

// interruptChar is the terminal's VINTR character (^C unless changed): what
// typing Ctrl-C sends.
func (p *pty) interruptChar(t *testing.T) byte {
	t.Helper()
	tio, err := unix.IoctlGetTermios(p.fd, unix.TCGETS)
	if err != nil {
		t.Fatalf("termios: %v", err)
	}
	if tio.Lflag&unix.ISIG == 0 {
		t.Fatal("the terminal does not turn the interrupt character into SIGINT (ISIG off)")
	}
	return tio.Cc[unix.VINTR]
}
