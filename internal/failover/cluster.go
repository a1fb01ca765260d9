package failover

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on process start and stop.
const (
	memcachedStartWait = 5 * time.Second
	proxyStartWait     = 10 * time.Second
	proxyStopWait      = 15 * time.Second
	startAttempts      = 5
)

// process is one child process this package started. It is only ever
// signalled by its own PID, and Wait is called on it exactly once, by a
// goroutine that closes done.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // valid after done is closed
}

// startProcess starts bin with args. stderr, when not nil, receives the
// process's standard error (it must be an *os.File so that no copying
// goroutine is needed).
func startProcess(bin string, args []string, stderr *os.File) (*process, error) {
	cmd := exec.Command(bin, args...)
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process unless it has already been waited for.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return fmt.Errorf("signal %v to pid %d: process already exited", sig, p.pid())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.pid(), err)
	}
	return nil
}

// kill ends the process with SIGKILL (which also ends a stopped process)
// and waits for it.
func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// waitFor waits up to d for the process to end and reports whether it did.
func (p *process) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitAccepting dials addr until it accepts a connection, the process ends,
// or wait passes.
func waitAccepting(addr string, p *process, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("process %d exited before accepting on %s: %v", p.pid(), addr, p.waitErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing accepting on %s after %v: %w", addr, wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// memcached is one memcached process on a fixed loopback port. It can be
// killed, frozen, thawed and started again on the same port.
type memcached struct {
	bin  string
	Addr string
	port int

	mu   sync.Mutex
	proc *process // nil when not running
}

// startMemcached starts memcached on a free loopback port, trying a few
// ports in case another process takes one first.
func startMemcached(bin string) (*memcached, error) {
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		m := &memcached{bin: bin, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = m.start(); lastErr == nil {
			return m, nil
		}
	}
	return nil, lastErr
}

func (m *memcached) start() error {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(m.port), "-U", "0", "-t", "1", "-m", "64"}
	if syscall.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root without it
	}
	p, err := startProcess(m.bin, args, nil)
	if err != nil {
		return fmt.Errorf("start memcached on %s: %w", m.Addr, err)
	}
	if err := waitAccepting(m.Addr, p, memcachedStartWait); err != nil {
		p.kill()
		return fmt.Errorf("start memcached on %s: %w", m.Addr, err)
	}
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	return nil
}

func (m *memcached) running() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// signal sends sig to the running memcached.
func (m *memcached) signal(sig syscall.Signal) error {
	p := m.running()
	if p == nil {
		return fmt.Errorf("signal memcached on %s: not running", m.Addr)
	}
	if err := p.signal(sig); err != nil {
		return fmt.Errorf("memcached on %s: %w", m.Addr, err)
	}
	return nil
}

// kill ends memcached with SIGKILL and waits for it. It is safe to call
// more than once.
func (m *memcached) kill() {
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// restart starts memcached again on the same port after kill; it comes up
// empty, as after a real crash. The port can linger briefly, so it retries.
func (m *memcached) restart() error {
	m.kill()
	var err error
	for i := 0; i < 50; i++ {
		if err = m.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("restart memcached on %s: %w", m.Addr, err)
}

// proxyProc is the mcproxy process under test.
type proxyProc struct {
	Addr    string
	logPath string
	proc    *process
	logFile *os.File
}

// proxyConfig renders the YAML config of mcproxy for a run.
func proxyConfig(cfg *Config, listen string, backends []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# written by mcfailover for one %s run\n", cfg.Scenario)
	fmt.Fprintf(&b, "listen: %s\n", listen)
	fmt.Fprintf(&b, "admin: \"\"\n")
	fmt.Fprintf(&b, "backends:\n")
	for _, a := range backends {
		fmt.Fprintf(&b, "  - addr: %s\n", a)
	}
	fmt.Fprintf(&b, "health: {interval: %v, timeout: %v, failure_limit: %d, success_limit: %d, auto_eject: true}\n",
		cfg.HealthInterval, cfg.HealthTimeout, cfg.FailureLimit, cfg.SuccessLimit)
	fmt.Fprintf(&b, "backend: {timeout: %v}\n", cfg.BackendTimeout)
	return b.Bytes()
}

// startProxy writes the config into dir and starts mcproxy on a free port,
// with its JSON log going to dir/mcproxy.log.
func startProxy(cfg *Config, dir string, backends []string) (*proxyProc, error) {
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		pp, err := startProxyOn(cfg, dir, addr, backends)
		if err == nil {
			return pp, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break // not a port race: retrying will not help
		}
	}
	return nil, lastErr
}

func startProxyOn(cfg *Config, dir, addr string, backends []string) (*proxyProc, error) {
	confPath := filepath.Join(dir, "mcproxy.yaml")
	if err := os.WriteFile(confPath, proxyConfig(cfg, addr, backends), 0o644); err != nil {
		return nil, fmt.Errorf("write mcproxy config: %w", err)
	}
	logPath := filepath.Join(dir, "mcproxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create mcproxy log: %w", err)
	}
	p, err := startProcess(cfg.Mcproxy, []string{"-config", confPath, "-log-format", "json"}, logFile)
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start mcproxy on %s: %w", addr, err)
	}
	if err := waitAccepting(addr, p, proxyStartWait); err != nil {
		p.kill()
		logFile.Close()
		return nil, fmt.Errorf("start mcproxy on %s: %w; log: %s", addr, err, tailFile(logPath, 600))
	}
	return &proxyProc{Addr: addr, logPath: logPath, proc: p, logFile: logFile}, nil
}

// stop sends SIGTERM and waits up to proxyStopWait for a graceful exit,
// then SIGKILL. It returns how long the exit took and whether it was clean
// (exit status 0 after SIGTERM).
func (pp *proxyProc) stop() (took time.Duration, clean bool, err error) {
	defer pp.logFile.Close()
	start := time.Now()
	if err := pp.proc.signal(syscall.SIGTERM); err != nil {
		pp.proc.kill()
		return time.Since(start), false, fmt.Errorf("stop mcproxy: %w", err)
	}
	if !pp.proc.waitFor(proxyStopWait) {
		pp.proc.kill()
		return time.Since(start), false, fmt.Errorf("stop mcproxy: no exit %v after SIGTERM; killed", proxyStopWait)
	}
	took = time.Since(start)
	if pp.proc.waitErr != nil {
		return took, false, fmt.Errorf("stop mcproxy: %w", pp.proc.waitErr)
	}
	return took, true, nil
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

// cluster is the three memcached backends and the proxy in front of them.
type cluster struct {
	dir      string
	keepDir  bool
	backends []*memcached
	proxy    *proxyProc
}

// startCluster starts numBackends memcached and mcproxy in front of them.
// On error everything already started is stopped again.
func startCluster(cfg *Config) (c *cluster, err error) {
	memBin, err := exec.LookPath(cfg.Memcached)
	if err != nil {
		return nil, fmt.Errorf("memcached binary %q (apt-get install memcached): %w", cfg.Memcached, err)
	}
	proxyBin, err := filepath.Abs(cfg.Mcproxy)
	if err != nil {
		return nil, fmt.Errorf("mcproxy binary %q: %w", cfg.Mcproxy, err)
	}
	if st, err := os.Stat(proxyBin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("mcproxy binary %q not found (make build): %v", cfg.Mcproxy, err)
	}
	dir, err := os.MkdirTemp("", "mcfailover-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	c = &cluster{dir: dir, keepDir: cfg.KeepDir}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	addrs := make([]string, 0, numBackends)
	for i := 0; i < numBackends; i++ {
		m, err := startMemcached(memBin)
		if err != nil {
			return c, err
		}
		c.backends = append(c.backends, m)
		addrs = append(addrs, m.Addr)
	}
	pcfg := *cfg
	pcfg.Mcproxy = proxyBin
	if c.proxy, err = startProxy(&pcfg, dir, addrs); err != nil {
		return c, err
	}
	return c, nil
}

// victim is the backend that fails.
func (c *cluster) victim() *memcached { return c.backends[0] }

// addrs returns the backend addresses in config order.
func (c *cluster) addrs() []string {
	a := make([]string, len(c.backends))
	for i, b := range c.backends {
		a[i] = b.Addr
	}
	return a
}

// close stops the proxy (SIGKILL if it is still running) and every
// memcached, and removes the temp dir unless it is to be kept.
func (c *cluster) close() error {
	if c.proxy != nil && !c.proxy.proc.exited() {
		c.proxy.proc.kill()
		c.proxy.logFile.Close()
	}
	for _, m := range c.backends {
		m.kill()
	}
	if c.keepDir {
		return nil
	}
	if err := os.RemoveAll(c.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", c.dir, err)
	}
	return nil
}
