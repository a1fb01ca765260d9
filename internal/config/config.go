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
// types below and are documented in the table of docs/configuration.md.
// Each default and range is defined once, in the package that owns the
// setting (ring, health, proxy); Default and validation take them from
// there, and TestConfigPageTable checks that page's table against them.
package config

import (
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
)

// DefaultListen is the default of listen: memcached's port, on loopback
// only, so that a proxy started without a config choice is not open to
// the network.
const DefaultListen = "127.0.0.1:11211"

// Config is mcproxy's whole configuration. A Config returned by Load or Parse
// has every default applied and has passed validation.
type Config struct {
	// Listen is the memcached-protocol address clients connect to,
	// host:port; an empty host listens on all interfaces.
	Listen string `yaml:"listen"`
	// Admin is the HTTP address of /metrics, /healthz and /readyz; empty
	// means no admin server.
	Admin string `yaml:"admin"`
	// ReusePort binds listen and admin with SO_REUSEPORT, so that another
	// mcproxy (the new one of an upgrade) can listen on the same ports
	// while this one does.
	ReusePort bool `yaml:"reuse_port"`
	// UpgradeSocket is the path of the Unix socket through which a new
	// mcproxy takes over this one's listeners and clients (a
	// zero-downtime upgrade); empty turns upgrades off. It requires
	// ReusePort.
	UpgradeSocket string `yaml:"upgrade_socket"`
	// Pprof also serves /debug/pprof/ on the Admin address. It requires
	// Admin to be set.
	Pprof bool `yaml:"pprof"`
	// DisableFlushAll refuses flush_all from clients, as memcached -F does:
	// they get "CLIENT_ERROR flush_all not allowed". The proxy's own flush
	// of a backend rejoining the ring (health.flush_on_readd) still runs.
	DisableFlushAll bool `yaml:"disable_flush_all"`
	// EventLoops is the number of event loops serving clients, each with
	// its own connections to every backend; 0 is one per CPU the process
	// may use, 0..proxy.MaxEventLoops.
	EventLoops int `yaml:"event_loops"`
	// Backends are the memcached servers keys are sharded over, the pool
	// named proxy.DefaultPoolName; no address twice. At least one backend
	// here or one pool in Pools.
	Backends []Backend `yaml:"backends"`
	// Replicas is the number of backends that hold each key,
	// proxy.MinReplicas..proxy.MaxReplicas and at most the number of
	// backends (docs/replicas.md): of the top-level backends, and of each
	// pool that does not set its own.
	Replicas int `yaml:"replicas"`
	// Zone is the zone mcproxy runs in: a replicated pool reads a key from
	// its copy in this zone first. Empty: none. Printable, no spaces.
	Zone string `yaml:"zone"`
	// Ring tunes the bounded-load consistent hash ring of Backends, and of
	// each pool of distribution ring that has no ring section of its own.
	Ring Ring `yaml:"ring"`
	// Pools are named pools of backends, each with its own placement, in
	// the order of the file (pools.go).
	Pools []Pool `yaml:"pools"`
	// Routes choose a pool for each key by its prefix, first match first;
	// the last has no prefix and takes every other key. Optional with one
	// pool.
	Routes []Route `yaml:"routes"`
	// Health tunes the backend health checker.
	Health Health `yaml:"health"`
	// Backend tunes the connections from the proxy to each backend.
	Backend BackendOptions `yaml:"backend"`
	// Limits bounds what clients may do.
	Limits Limits `yaml:"limits"`
	// Failover tunes how keys are kept fresh while they are served by a
	// stand-in backend.
	Failover Failover `yaml:"failover"`
	// TLS is the clients' TLS listener (tls.go).
	TLS TLS `yaml:"tls"`
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
	// ring.MinWeight..ring.MaxWeight (default ring.DefaultWeight).
	Weight int `yaml:"weight"`
	// Zone is the failure domain the backend is in (an availability zone,
	// a rack): with replicas, a key's copies go to distinct zones first.
	// Empty: none. Printable, no spaces.
	Zone string `yaml:"zone"`
}

// Ring tunes the consistent hash ring (github.com/buraksezer/consistent).
type Ring struct {
	// Partitions is the number of partitions keys hash into,
	// ring.MinPartitions..ring.MaxPartitions; a prime works best.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor is the number of points each ring member gets,
	// ring.MinReplicationFactor..ring.MaxReplicationFactor.
	ReplicationFactor int `yaml:"replication_factor"`
	// Load caps the partitions per member at Load times the average;
	// finite and >= ring.MinLoad.
	Load float64 `yaml:"load"`
}

// Health tunes the health checker that probes every backend.
type Health struct {
	// Interval is the time between two probes of a backend; > 0.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe; > 0 and not more than Interval.
	Timeout time.Duration `yaml:"timeout"`
	// FailureLimit is the number of failed probes in a row that mark a
	// backend down, health.MinFailureLimit..health.MaxFailureLimit.
	FailureLimit int `yaml:"failure_limit"`
	// SuccessLimit is the number of good probes in a row that mark a down
	// backend up again, health.MinSuccessLimit..health.MaxSuccessLimit.
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

// BackendOptions tunes the proxy's connections to each backend (the YAML
// section "backend").
type BackendOptions struct {
	// Connections is the number of connections per backend,
	// proxy.MinBackendConnections..proxy.MaxBackendConnections.
	Connections int `yaml:"connections"`
	// Timeout bounds one request to a backend; > 0.
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds dialing a backend; > 0.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// TLS speaks TLS to every backend (tls.go); global for now, per pool
	// once pools are served.
	TLS BackendTLS `yaml:"tls"`
}

// Limits bounds what clients may do.
type Limits struct {
	// MaxConnections is the most client connections served at once,
	// proxy.MinMaxConnections..proxy.MaxMaxConnections.
	MaxConnections int `yaml:"max_connections"`
	// MaxItemSize is the largest value a client may store, in bytes,
	// proxy.MinMaxItemSize..proxy.MaxMaxItemSize (memcached's -I range).
	// In YAML: bytes, or a number with suffix k or m (1024-based), e.g.
	// "1m".
	MaxItemSize int `yaml:"max_item_size"`
	// ClientIdleTimeout closes client connections idle this long; 0 means
	// never.
	ClientIdleTimeout time.Duration `yaml:"client_idle_timeout"`
	// ClientOutputLimit is the memory, in bytes, the proxy holds for the
	// replies of one client before it stops reading that client's
	// commands; twice as much disconnects the client.
	// proxy.MinClientOutputLimit..proxy.MaxClientOutputLimit; in YAML a
	// size like MaxItemSize.
	ClientOutputLimit int `yaml:"client_output_limit"`
	// ReqsPerEvent is the most commands one client runs in a turn of its
	// event loop before it yields to the others (memcached's -R),
	// proxy.MinReqsPerEvent..proxy.MaxReqsPerEvent.
	ReqsPerEvent int `yaml:"reqs_per_event"`
	// ReadBytesPerEvent is the most bytes read from one client in a turn
	// of its event loop, proxy.MinReadBytesPerEvent..proxy.MaxReadBytesPerEvent;
	// in YAML a size like MaxItemSize.
	ReadBytesPerEvent int `yaml:"read_bytes_per_event"`
}

// Failover tunes failover without stale reads (proxy/failover.go).
type Failover struct {
	// TTL caps the expiry of writes that land on a stand-in backend while
	// a key's own backend is out of the ring, and (plus the backend timeout
	// and 2s) is how long after a ring change writes also delete the key on
	// the backends that held it before; whole seconds,
	// proxy.MinFailoverTTL..proxy.MaxFailoverTTL.
	TTL time.Duration `yaml:"ttl"`
}

// Default returns the config with every default applied and no backends.
// It does not pass validation until at least one backend is added. Every
// value comes from the package that owns the setting; the zero values
// (admin, pprof, disable_flush_all) are written out so that the list is
// complete.
func Default() Config {
	return Config{
		Listen:        DefaultListen,
		Admin:         "",
		ReusePort:     false,
		UpgradeSocket: "",
		Pprof:         false,

		DisableFlushAll: false,
		EventLoops:      proxy.DefaultEventLoops,
		Replicas:        proxy.DefaultReplicas,
		Zone:            "",
		Ring: Ring{
			Partitions:        ring.DefaultPartitions,
			ReplicationFactor: ring.DefaultReplicationFactor,
			Load:              ring.DefaultLoad,
		},
		Health: Health{
			Interval:     health.DefaultInterval,
			Timeout:      health.DefaultTimeout,
			FailureLimit: health.DefaultFailureLimit,
			SuccessLimit: health.DefaultSuccessLimit,
			AutoEject:    proxy.DefaultAutoEject,
			FlushOnReadd: proxy.DefaultFlushOnReadd,
			// The zero proxy.EjectionCap is the default cap.
			MaxEjected: EjectionCap(proxy.EjectionCap{}.String()),
		},
		Backend: BackendOptions{
			Connections:    proxy.DefaultBackendConnections,
			Timeout:        proxy.DefaultBackendTimeout,
			ConnectTimeout: proxy.DefaultConnectTimeout,
			TLS:            defaultBackendTLS(),
		},
		Limits: Limits{
			MaxConnections:    proxy.DefaultMaxConnections,
			MaxItemSize:       proxy.DefaultMaxItemSize,
			ClientIdleTimeout: proxy.DefaultClientIdleTimeout,
			ClientOutputLimit: proxy.DefaultClientOutputLimit,
			ReqsPerEvent:      proxy.DefaultReqsPerEvent,
			ReadBytesPerEvent: proxy.DefaultReadBytesPerEvent,
		},
		Failover: Failover{
			TTL: proxy.DefaultFailoverTTL,
		},
		TLS: defaultTLS(),
	}
}
