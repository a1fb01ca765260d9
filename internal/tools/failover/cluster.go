package failover

import (
	"bytes"
	"fmt"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
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
		cfg.Health.Interval, cfg.Health.Timeout, cfg.Health.FailureLimit, cfg.Health.SuccessLimit)
	fmt.Fprintf(&b, "backend: {timeout: %v}\n", cfg.BackendTimeout)
	return b.Bytes()
}

// startCluster starts numBackends memcached and mcproxy in front of them,
// its JSON log in the cluster's directory.
func startCluster(cfg *Config) (*mcproxyproc.Cluster, error) {
	return mcproxyproc.StartCluster(mcproxyproc.ClusterSpec{
		Mcproxy:       cfg.Mcproxy,
		Memcached:     cfg.Memcached,
		MemcachedArgs: []string{"-m", "64"},
		Backends:      numBackends,
		TempPrefix:    "mcfailover-",
		KeepDir:       cfg.KeepDir,
		Config: func(listen, _ string, backends []string) ([]byte, error) {
			return proxyConfig(cfg, listen, backends), nil
		},
		Args: []string{"-log-format", "json"},
	})
}
