package mcproxyproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/childproc"
)

// Bounds on a proxy's start and stop.
const (
	// StartWait bounds the wait for a started proxy to accept connections.
	StartWait = 10 * time.Second
	// StopWait bounds the wait for a proxy to exit after SIGTERM: more than
	// its default drain of 10 s.
	StopWait = 15 * time.Second
)

// Spec describes a proxy for Launch.
type Spec struct {
	// Bin is the mcproxy binary.
	Bin string
	// Dir receives the config (mcproxy.yaml) and the log (mcproxy.log).
	Dir string
	// Admin asks for an admin HTTP listener on a free port too.
	Admin bool
	// Config renders the YAML config for the addresses chosen: listen, and
	// admin ("" unless Admin is set).
	Config func(listen, admin string) ([]byte, error)
	// Args are further flags, after -config.
	Args []string
}

// Proxy is an mcproxy started by Launch.
type Proxy struct {
	*childproc.Process
	// Addr is the memcached-protocol listener, AdminAddr the admin HTTP
	// listener ("" without one).
	Addr, AdminAddr string
	// LogPath is the file that receives the proxy's output.
	LogPath string
	logFile *os.File
}

// Launch starts the proxy of s on free loopback ports and waits until it
// accepts connections. It tries new ports when another process took one
// first.
func Launch(s Spec) (*Proxy, error) {
	var lastErr error
	for attempt := 0; attempt < childproc.StartAttempts; attempt++ {
		p, err := launchOnce(s)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break // not a port race: retrying will not help
		}
	}
	return nil, lastErr
}

func launchOnce(s Spec) (*Proxy, error) {
	listen, err := childproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	var admin string
	if s.Admin {
		if admin, err = childproc.FreeAddr(); err != nil {
			return nil, err
		}
	}
	conf, err := s.Config(listen, admin)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(s.Dir, "mcproxy.yaml")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, fmt.Errorf("write mcproxy config: %w", err)
	}
	p := &Proxy{Addr: listen, AdminAddr: admin, LogPath: filepath.Join(s.Dir, "mcproxy.log")}
	if p.logFile, err = os.Create(p.LogPath); err != nil {
		return nil, fmt.Errorf("create mcproxy log: %w", err)
	}
	args := append([]string{"-config", confPath}, s.Args...)
	if p.Process, err = childproc.Start(s.Bin, args, p.logFile); err != nil {
		p.logFile.Close()
		return nil, fmt.Errorf("start mcproxy: %w", err)
	}
	for _, a := range []string{listen, admin} {
		if a == "" {
			continue
		}
		if err := p.WaitAccepting(a, StartWait); err != nil {
			p.Kill()
			return nil, fmt.Errorf("start mcproxy: %w; its log: %s", err, tailFile(p.LogPath, 800))
		}
	}
	return p, nil
}

// Kill ends the proxy with SIGKILL, waits for it and closes its log.
func (p *Proxy) Kill() {
	p.Process.Kill()
	p.logFile.Close()
}

// Stop sends SIGTERM and waits up to StopWait for a clean exit (then
// SIGKILL). It returns how long the exit took, and nil only for a clean
// exit.
func (p *Proxy) Stop() (time.Duration, error) {
	defer p.logFile.Close()
	start := time.Now()
	err := p.Process.Stop(StopWait)
	if err != nil {
		err = fmt.Errorf("stop mcproxy: %w", err)
	}
	return time.Since(start), err
}

// tailFile returns up to n bytes of the end of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
