package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// Bounds on the proxy's start, stop and one admin scrape.
const (
	proxyStartWait = 10 * time.Second
	proxyStopWait  = 15 * time.Second
	scrapeTimeout  = 5 * time.Second
	startAttempts  = 5
)

// proxyProc is the mcproxy process of a run. Its Wait is called once, by a
// goroutine that closes done.
type proxyProc struct {
	Addr      string // memcached-protocol listener
	AdminAddr string // HTTP admin (/metrics)
	LogPath   string
	cmd       *exec.Cmd
	logFile   *os.File
	done      chan struct{}
	waitErr   error // valid once done is closed
}

// startProxy writes the config into dir and starts bin on free loopback
// ports, retrying when another process took a port first.
func startProxy(bin, dir string, pc *ProxyConfig, backends []string) (*proxyProc, error) {
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		p, err := startProxyOnce(bin, dir, pc, backends)
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

func startProxyOnce(bin, dir string, pc *ProxyConfig, backends []string) (*proxyProc, error) {
	port, err := memctest.FreePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := memctest.FreePort()
	if err != nil {
		return nil, err
	}
	p := &proxyProc{
		Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		AdminAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		LogPath:   filepath.Join(dir, "mcproxy.log"),
		done:      make(chan struct{}),
	}
	conf, err := pc.render(p.Addr, p.AdminAddr, backends)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "mcproxy.yaml")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, fmt.Errorf("write mcproxy config: %w", err)
	}
	if p.logFile, err = os.Create(p.LogPath); err != nil {
		return nil, fmt.Errorf("create mcproxy log: %w", err)
	}
	p.cmd = exec.Command(bin, "-config", confPath, "-log-format", "json")
	p.cmd.Stderr = p.logFile
	p.cmd.SysProcAttr = childSysProcAttr()
	if err := p.cmd.Start(); err != nil {
		p.logFile.Close()
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	for _, a := range []string{p.Addr, p.AdminAddr} {
		if err := p.waitAccepting(a); err != nil {
			p.kill()
			return nil, fmt.Errorf("start mcproxy: %w; its log: %s", err, tailFile(p.LogPath, 800))
		}
	}
	return p, nil
}

// PID returns the proxy's process id.
func (p *proxyProc) PID() int { return p.cmd.Process.Pid }

func (p *proxyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitAccepting dials addr until it accepts, the proxy exits or
// proxyStartWait passes.
func (p *proxyProc) waitAccepting(addr string) error {
	deadline := time.Now().Add(proxyStartWait)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("mcproxy exited before accepting on %s: %v", addr, p.waitErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing accepting on %s after %v: %w", addr, proxyStartWait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the proxy with SIGKILL and waits for it.
func (p *proxyProc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
	p.logFile.Close()
}

// stop sends SIGTERM and waits up to proxyStopWait for a clean exit, then
// SIGKILL.
func (p *proxyProc) stop() error {
	if p.exited() {
		p.logFile.Close()
		return fmt.Errorf("stop mcproxy: it had already exited: %v", p.waitErr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.kill()
		return fmt.Errorf("stop mcproxy: SIGTERM to pid %d: %w", p.PID(), err)
	}
	t := time.NewTimer(proxyStopWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill()
		return fmt.Errorf("stop mcproxy: no exit %v after SIGTERM; killed", proxyStopWait)
	}
	p.logFile.Close()
	if p.waitErr != nil {
		return fmt.Errorf("stop mcproxy: %w", p.waitErr)
	}
	return nil
}

// ProcSample is the proxy's footprint at one moment.
type ProcSample struct {
	At         int64 // checker time
	RSSKiB     int64 // VmRSS from /proc/<pid>/status
	Goroutines int64 // go_goroutines from the admin /metrics
}

// sample reads the proxy's RSS and goroutine count.
func (p *proxyProc) sample(ctx context.Context, at int64) (ProcSample, error) {
	s := ProcSample{At: at}
	var err error
	if s.RSSKiB, err = readRSS(p.PID()); err != nil {
		return s, err
	}
	if s.Goroutines, err = scrapeGauge(ctx, "http://"+p.AdminAddr+"/metrics", "go_goroutines"); err != nil {
		return s, err
	}
	return s, nil
}

// readRSS returns the VmRSS of pid in KiB.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of pid %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("read RSS of pid %d: no VmRSS line in kB", pid)
}

// scrapeClient fetches /metrics without keeping connections (and their
// goroutines) around between samples, and never through an HTTP proxy.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// scrapeGauge fetches a Prometheus text page and returns the value of the
// unlabelled sample name.
func scrapeGauge(ctx context.Context, url, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := []byte(name + " ")
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(string(rest)), 64)
			if err != nil {
				return 0, fmt.Errorf("scrape %s: %s: %w", url, name, err)
			}
			return int64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	return 0, fmt.Errorf("scrape %s: no %s sample", url, name)
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
