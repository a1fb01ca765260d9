// Package memctest starts real memcached processes on free loopback ports for
// tests. Nothing here mocks memcached: every Server is a child process that the
// test owns, addresses only 127.0.0.1, and is ended by its PID at cleanup.
package memctest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startWait bounds how long Start waits for memcached to accept connections.
const startWait = 5 * time.Second

// Server is one memcached process started by a test.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Port is the TCP port memcached listens on.
	Port int

	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// Binary returns the path of the memcached binary, or an error saying how to
// install it.
func Binary() (string, error) {
	p, err := exec.LookPath("memcached")
	if err != nil {
		return "", fmt.Errorf("memcached not found in PATH (apt-get install memcached): %w", err)
	}
	return p, nil
}

// Start launches memcached on a free loopback port with the given extra
// arguments (for example "-m", "64" or "-I", "2m") and registers its end
// with t.Cleanup. It fails the test if memcached cannot be started.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	s, err := Launch(extraArgs...)
	if err != nil {
		t.Fatalf("memctest: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "0", "-t", "1"}, s.args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = childSysProcAttr()
	// Run as root is refused by memcached unless -u is given.
	if syscall.Geteuid() == 0 {
		cmd.Args = append(cmd.Args, "-u", "root")
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startWait)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			return fmt.Errorf("memcached on %s exited at start", s.Addr)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("memcached on %s not accepting after %v: %w", s.Addr, startWait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// PID returns the process id of the running memcached, or 0 once it is gone.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill ends the process with SIGKILL and waits for it. It is safe to call
// more than once and after the process has exited.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// A stopped process still dies on SIGKILL; SIGCONT is not needed.
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Freeze sends SIGSTOP: the process keeps its sockets but answers nothing,
// like a hung host. It returns once the kernel reports the process stopped,
// since signal delivery is asynchronous and a thread on another CPU could
// otherwise still answer a request sent right after Freeze.
func (s *Server) Freeze() error {
	if err := s.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	pid := s.PID()
	deadline := time.Now().Add(startWait)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return fmt.Errorf("memctest: read state of pid %d: %w", pid, err)
		}
		// The state follows the command name in parentheses: "pid (comm) T ...".
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't') {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("memctest: pid %d not stopped %v after SIGSTOP", pid, startWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// Thaw sends SIGCONT to a frozen process.
func (s *Server) Thaw() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("memctest: memcached is not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Restart starts memcached again on the same port after Kill. The data is
// gone, as after a real crash.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Relaunch(); err != nil {
		t.Fatalf("memctest: %v", err)
	}
}
