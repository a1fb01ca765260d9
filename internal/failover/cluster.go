package failover

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/mcproxy/mcproxy/internal/memctest"
	"github.com/mcproxy/mcproxy/internal/proxyproc"
)

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

// cluster is the memcached backends and the proxy in front of them.
type cluster struct {
	dir      string
	keepDir  bool
	backends []*memctest.Server
	proxy    *proxyproc.Proxy
}

// startCluster starts numBackends memcached and mcproxy in front of them.
// On error everything already started is stopped again.
func startCluster(cfg *Config) (c *cluster, err error) {
	proxyBin, err := proxyproc.CheckBinary(cfg.Mcproxy)
	if err != nil {
		return nil, err
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
	for i := 0; i < numBackends; i++ {
		m, err := memctest.LaunchBinary(cfg.Memcached, "-m", "64")
		if err != nil {
			return c, err
		}
		c.backends = append(c.backends, m)
	}
	addrs := c.addrs()
	c.proxy, err = proxyproc.Launch(proxyproc.Spec{
		Bin:    proxyBin,
		Dir:    dir,
		Config: func(listen, _ string) ([]byte, error) { return proxyConfig(cfg, listen, addrs), nil },
		Args:   []string{"-log-format", "json"},
	})
	return c, err
}

// victim is the backend that fails.
func (c *cluster) victim() *memctest.Server { return c.backends[0] }

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
	if c.proxy != nil {
		c.proxy.Kill()
	}
	for _, m := range c.backends {
		m.Kill()
	}
	if c.keepDir {
		return nil
	}
	if err := os.RemoveAll(c.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", c.dir, err)
	}
	return nil
}
