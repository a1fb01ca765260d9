package mcproxyproc

import (
	"errors"
	"fmt"
	"os"

	"github.com/mcproxy/mcproxy/internal/tools/memcachedproc"
)

// ClusterSpec describes a cluster for StartCluster: memcached backends and
// an mcproxy in front of them, as mcfailover and mcsoak run them.
type ClusterSpec struct {
	// Mcproxy is the path of the mcproxy binary (CheckBinary).
	Mcproxy string
	// Memcached is the memcached binary, a path or a name in PATH; "" for
	// "memcached".
	Memcached string
	// MemcachedArgs are extra arguments of every memcached ("-m", "64").
	MemcachedArgs []string
	// Backends is the number of memcached processes.
	Backends int
	// TempPrefix names the temporary directory of the config and the log.
	TempPrefix string
	// KeepDir keeps that directory after Close.
	KeepDir bool
	// Admin asks for the proxy's admin HTTP listener too.
	Admin bool
	// Config renders the proxy's YAML config: its listen and admin
	// addresses (admin "" unless Admin), and the backends in order.
	Config func(listen, admin string, backends []string) ([]byte, error)
	// Args are further flags of the proxy, after -config.
	Args []string
}

// Cluster is the processes StartCluster started.
type Cluster struct {
	// Dir holds the proxy's config and log.
	Dir      string
	Backends []*memcachedproc.Server
	Proxy    *Proxy
	keepDir  bool
}

// StartCluster starts the backends, then the proxy in front of them. On
// error everything already started is stopped again.
func StartCluster(s ClusterSpec) (*Cluster, error) {
	bin, err := CheckBinary(s.Mcproxy)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", s.TempPrefix)
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	c := &Cluster{Dir: dir, keepDir: s.KeepDir}
	if err := c.start(s, bin); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(s ClusterSpec, bin string) error {
	for i := 0; i < s.Backends; i++ {
		m, err := memcachedproc.LaunchBinary(s.Memcached, s.MemcachedArgs...)
		if err != nil {
			return err
		}
		c.Backends = append(c.Backends, m)
	}
	addrs := c.Addrs()
	var err error
	c.Proxy, err = Launch(Spec{
		Bin:    bin,
		Dir:    c.Dir,
		Admin:  s.Admin,
		Config: func(listen, admin string) ([]byte, error) { return s.Config(listen, admin, addrs) },
		Args:   s.Args,
	})
	return err
}

// Addrs returns the backend addresses in order.
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.Backends))
	for i, b := range c.Backends {
		a[i] = b.Addr
	}
	return a
}

// Close kills the proxy if it still runs and every memcached, and removes
// Dir unless it is to be kept. It may be called again.
func (c *Cluster) Close() error {
	if c.Proxy != nil {
		c.Proxy.Kill()
	}
	for _, m := range c.Backends {
		m.Kill()
	}
	if c.keepDir {
		return nil
	}
	if err := os.RemoveAll(c.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", c.Dir, err)
	}
	return nil
}
