package deploytest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// waitBound bounds every wait for a process or a state.
const waitBound = 15 * time.Second

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// mcproxyBinary builds cmd/mcproxy once per test run.
func mcproxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mcproxy-deploytest-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "mcproxy")
		out, err := exec.Command("go", "build", "-o", builtBin, "../../cmd/mcproxy").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build mcproxy: %v", buildErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// syncBuffer collects a process's output for failure messages.
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

// mcproxyProcess is a real mcproxy started by a test, ended by its PID.
type mcproxyProcess struct {
	cmd    *exec.Cmd
	listen string
	log    *syncBuffer
	done   chan struct{}
}

// startMcproxy runs the binary with args and waits until listen accepts.
func startMcproxy(t *testing.T, listen string, args ...string) *mcproxyProcess {
	t.Helper()
	p := &mcproxyProcess{listen: listen, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(mcproxyBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start mcproxy: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(waitBound):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("mcproxy did not stop on SIGTERM within %v", waitBound)
		}
		if t.Failed() {
			t.Logf("mcproxy output:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(waitBound)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("mcproxy exited at start:\n%s", p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcproxy not listening on %s after %v:\n%s", listen, waitBound, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStat polls one of the proxy's stats until it is want.
func (p *mcproxyProcess) waitStat(t *testing.T, step, name, want string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		got := memctest.Stats(t, p.listen, "")[name]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stat %s is %q after %v, want %q", step, name, got, waitBound, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	port, err := memctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
