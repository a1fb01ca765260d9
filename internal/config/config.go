// Package config loads, validates, compares and watches mcproxy's YAML
// config file.
//
//   - Load and Parse read a file strictly: an unknown key, a value of the
//     wrong type and an out-of-range value are all errors that name the
//     dotted key (e.g. "health.interval", "backends[2].weight") and, where
//     the file has one, its line. All problems are reported at once.
//   - Default is the config with every default applied and no backends.
//   - Diff lists the keys whose values differ between two configs, for live
//     reload.
//   - Watch calls a function when the file's content changes, including
//     editors' rename-over writes and Kubernetes ConfigMap symlink swaps.
//
// The YAML key names are a public contract: they are the yaml tags of the
// types below and are documented in README-config.md.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/proxy"
)

// Config is mcproxy's whole configuration. A Config returned by Load or Parse
// has every default applied and has passed validation.
type Config struct {
	// Listen is the memcached-protocol address clients connect to,
	// host:port; an empty host listens on all interfaces.
	Listen string `yaml:"listen"`
	// Admin is the HTTP address of /metrics, /healthz and /readyz; empty
	// means no admin server.
	Admin string `yaml:"admin"`
	// Pprof also serves /debug/pprof/ on the Admin address. It requires
	// Admin to be set.
	Pprof bool `yaml:"pprof"`
	// DisableFlushAll refuses flush_all from clients, as memcached -F does:
	// they get "CLIENT_ERROR flush_all not allowed". The proxy's own flush
	// of a backend rejoining the ring (health.flush_on_readd) still runs.
	DisableFlushAll bool `yaml:"disable_flush_all"`
	// Backends are the memcached servers keys are sharded over; at least
	// one, no address twice.
	Backends []Backend `yaml:"backends"`
	// Ring tunes the bounded-load consistent hash ring.
	Ring Ring `yaml:"ring"`
	// Health tunes the backend health checker.
	Health Health `yaml:"health"`
	// Backend tunes the connections from the proxy to each backend.
	Backend BackendOptions `yaml:"backend"`
	// Limits bounds what clients may do.
	Limits Limits `yaml:"limits"`
	// Failover tunes how keys are kept fresh while they are served by a
	// stand-in backend.
	Failover Failover `yaml:"failover"`
}

// Backend is one memcached server. In YAML it is either a mapping
// {name: id, addr: host:port, weight: n} or the shorthand "host:port"
// (weight 1).
type Backend struct {
	// Name is the backend's identity on the ring: its keys follow the
	// name, so the address can change without moving them. Empty means
	// the address. At most 250 bytes, no spaces or control characters.
	Name string `yaml:"name"`
	// Addr is host:port; the host must not be empty. No two backends may
	// resolve to the same server.
	Addr string `yaml:"addr"`
	// Weight is the backend's share of the keys relative to the others,
	// 1..1000.
	Weight int `yaml:"weight"`
}

// Ring tunes the consistent hash ring (github.com/buraksezer/consistent).
type Ring struct {
	// Partitions is the number of partitions keys hash into, 1..1048576;
	// a prime works best.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor is the number of points each ring member gets,
	// 1..1000.
	ReplicationFactor int `yaml:"replication_factor"`
	// Load caps the partitions per member at Load times the average;
	// finite and >= 1.0.
	Load float64 `yaml:"load"`
}

// Health tunes the health checker that probes every backend.
type Health struct {
	// Interval is the time between two probes of a backend; > 0.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe; > 0 and not more than Interval.
	Timeout time.Duration `yaml:"timeout"`
	// FailureLimit is the number of failed probes in a row that mark a
	// backend down, 1..1000.
	FailureLimit int `yaml:"failure_limit"`
	// SuccessLimit is the number of good probes in a row that mark a down
	// backend up again, 1..1000.
	SuccessLimit int `yaml:"success_limit"`
	// AutoEject takes down backends out of the ring (their keys move to the
	// others) until they recover.
	AutoEject bool `yaml:"auto_eject"`
	// FlushOnReadd empties a backend with flush_all before it rejoins the
	// ring after an ejection: while it was out, its keys were written and
	// deleted on other backends, and its old copies must not be served.
	FlushOnReadd bool `yaml:"flush_on_readd"`
	// MaxEjected caps how many failed backends auto_eject takes out of the
	// ring at once: a count ("1") or a share of the pool ("50%", rounded
	// down). Past it, failed backends stay in the ring and their keys fail
	// fast, rather than all keys piling onto the last survivors.
	MaxEjected EjectionCap `yaml:"max_ejected"`
}

// EjectionCap is health.max_ejected as written in the file, normalised:
// a whole number of backends ("1") or a whole percentage ("50%").
type EjectionCap string

// Parse splits the cap into its number and whether it is a percentage.
func (c EjectionCap) Parse() (n int, percent bool, err error) {
	s, percent := strings.CutSuffix(string(c), "%")
	n, err = strconv.Atoi(s)
	switch {
	case err != nil || strings.HasPrefix(s, "+"):
		return 0, false, fmt.Errorf("%q is not a number of backends such as 1 or a share of the pool such as \"50%%\"", string(c))
	case n < 0:
		return 0, false, fmt.Errorf("%s must not be negative (0 never ejects)", c)
	case percent && n > 100:
		return 0, false, fmt.Errorf("%s is out of range 0%%..100%%", c)
	}
	return n, percent, nil
}

// BackendOptions tunes the proxy's connections to each backend (the YAML
// section "backend").
type BackendOptions struct {
	// Connections is the number of connections per backend, 1..64.
	Connections int `yaml:"connections"`
	// Timeout bounds one request to a backend; > 0.
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds dialing a backend; > 0.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Limits bounds what clients may do.
type Limits struct {
	// MaxConnections is the most client connections served at once,
	// 1..1000000.
	MaxConnections int `yaml:"max_connections"`
	// MaxItemSize is the largest value a client may store, in bytes,
	// 1024..1073741824 (memcached's -I range). In YAML: bytes, or a
	// number with suffix k or m (1024-based), e.g. "1m".
	MaxItemSize int `yaml:"max_item_size"`
	// ClientIdleTimeout closes client connections idle this long; 0 means
	// never.
	ClientIdleTimeout time.Duration `yaml:"client_idle_timeout"`
	// ClientOutputLimit is the memory, in bytes, the proxy holds for the
	// replies of one client before it stops reading that client's
	// commands; twice as much disconnects the client. 1m..4096m; in YAML a
	// size like MaxItemSize.
	ClientOutputLimit int `yaml:"client_output_limit"`
}

// Failover tunes failover without stale reads (proxy/failover.go).
type Failover struct {
	// TTL caps the expiry of writes that land on a stand-in backend while
	// a key's own backend is out of the ring, and (plus the backend timeout
	// and 2s) is how long after a ring change writes also delete the key on
	// the backends that held it before; whole seconds, 1s..24h.
	TTL time.Duration `yaml:"ttl"`
}

// Default returns the config with every default applied and no backends.
// It does not pass validation until at least one backend is added.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:11211",
		Admin:  "",
		Pprof:  false,

		DisableFlushAll: false,
		Ring: Ring{
			Partitions:        7919,
			ReplicationFactor: 160,
			Load:              1.25,
		},
		Health: Health{
			Interval:     time.Second,
			Timeout:      500 * time.Millisecond,
			FailureLimit: 3,
			SuccessLimit: 2,
			AutoEject:    true,
			FlushOnReadd: true,
			MaxEjected:   "50%",
		},
		Backend: BackendOptions{
			Connections:    2,
			Timeout:        time.Second,
			ConnectTimeout: 500 * time.Millisecond,
		},
		Limits: Limits{
			MaxConnections:    10000,
			MaxItemSize:       1 << 20,
			ClientIdleTimeout: 0,
			ClientOutputLimit: 64 << 20,
		},
		Failover: Failover{
			TTL: proxy.DefaultFailoverTTL,
		},
	}
}

// defaultWeight is a backend's weight when the file gives none.
const defaultWeight = 1
