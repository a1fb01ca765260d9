// Package memcachedproc runs real memcached processes on free loopback
// ports, for the tools (mcsoak, mcfailover, mcbench -scenario) and, through
// internal/testkit/memcachedtest, for the tests. Every Server is a child
// process (internal/tools/childproc) that addresses only
// 127.0.0.1 and is ended by its PID. Every call returns its error; nothing
// here imports package testing.
package memcachedproc

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/childproc"
)

// startWait bounds how long a start waits for memcached to accept
// connections, and Freeze for the process to stop.
const startWait = 5 * time.Second

// Server is one memcached process on a fixed loopback port. It can be
// killed, frozen, thawed and started again on the same port.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Port is the TCP port memcached listens on.
	Port int

	bin  string // "" for the memcached in PATH
	args []string
	mu   sync.Mutex
	proc *childproc.Process // nil when not running
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

// Launch starts memcached on a free loopback port with the given extra
// arguments (for example "-m", "64" or "-I", "2m") and returns it running.
// The caller owns the process and must Kill it.
func Launch(extraArgs ...string) (*Server, error) { return LaunchBinary("", extraArgs...) }

// LaunchBinary is Launch with a given memcached binary, a path or a name
// looked up in PATH ("" for "memcached").
func LaunchBinary(bin string, extraArgs ...string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < childproc.StartAttempts; attempt++ {
		port, err := childproc.FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: childproc.LoopbackAddr(port), Port: port, bin: bin, args: extraArgs}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
		// Most likely another process took the port first: try another.
	}
	return nil, fmt.Errorf("start memcached: %w", lastErr)
}

func (s *Server) start() error {
	bin, err := s.binary()
	if err != nil {
		return err
	}
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "0", "-t", "1"}, s.args...)
	if syscall.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root without it
	}
	p, err := childproc.Start(bin, args, nil)
	if err != nil {
		return err
	}
	if err := p.WaitAccepting(s.Addr, startWait); err != nil {
		p.Kill()
		return fmt.Errorf("memcached on %s: %w", s.Addr, err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// binary returns the path of the server's memcached binary.
func (s *Server) binary() (string, error) {
	if s.bin == "" {
		return Binary()
	}
	p, err := exec.LookPath(s.bin)
	if err != nil {
		return "", fmt.Errorf("memcached binary %q (apt-get install memcached): %w", s.bin, err)
	}
	return p, nil
}

func (s *Server) running() *childproc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// PID returns the process id of the running memcached, or 0 once it is gone.
func (s *Server) PID() int {
	if p := s.running(); p != nil {
		return p.PID()
	}
	return 0
}

// Kill ends the process with SIGKILL and waits for it. It is safe to call
// more than once and after the process has exited.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.Kill() // a stopped process dies on SIGKILL too; no SIGCONT needed
	}
}

// Relaunch kills memcached (if it runs) and starts it again on the same
// port with the same arguments; it comes back empty, as after a real crash.
func (s *Server) Relaunch() error {
	s.Kill()
	var err error
	for i := 0; i < 50; i++ { // the port can linger briefly after a kill
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("restart memcached on %s: %w", s.Addr, err)
}

// Freeze sends SIGSTOP: the process keeps its sockets but answers nothing,
// like a hung host. It returns once the kernel reports the process stopped.
func (s *Server) Freeze() error {
	p, err := s.signal(syscall.SIGSTOP)
	if err != nil {
		return err
	}
	if err := p.WaitStopped(startWait); err != nil {
		return fmt.Errorf("memcachedproc: memcached on %s: %w", s.Addr, err)
	}
	return nil
}

// Thaw sends SIGCONT to a frozen process.
func (s *Server) Thaw() error {
	_, err := s.signal(syscall.SIGCONT)
	return err
}

func (s *Server) signal(sig syscall.Signal) (*childproc.Process, error) {
	p := s.running()
	if p == nil {
		return nil, errors.New("memcachedproc: memcached is not running")
	}
	if err := p.Signal(sig); err != nil {
		return nil, fmt.Errorf("memcachedproc: memcached on %s: %w", s.Addr, err)
	}
	return p, nil
}
