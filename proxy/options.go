package proxy

import (
	"runtime"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/internal/defaults"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// Options configure a Proxy. Zero values take the defaults noted, except
// the bools, whose zero value is off.
type Options struct {
	// Backends and Ring are the pool named DefaultPoolName when Pools is
	// empty (the config file's top-level backends: and ring:).
	Backends []Backend
	Ring     ring.Config
	// Pools and Routes (pool.go): the named pools and the prefix routes
	// that choose a pool for each key. With one pool, Routes may be empty.
	Pools  []Pool
	Routes []Route
	// Replicas is the default pool's Pool.Replicas (the config's
	// top-level replicas:); named pools carry their own.
	Replicas int
	// Zone is the zone the proxy runs in: a replicated pool reads a key
	// from its copy in this zone first (replica.go). Empty: placement
	// order.
	Zone string

	// EventLoops is the number of event loops, each serving its share of
	// the clients with its own backend connections; 0 is one per CPU the
	// process may use (runtime.GOMAXPROCS), of which only as many as the
	// load needs are kept awake (loop_balance.go).
	EventLoops int
	// adaptiveLoops: EventLoops was 0, so the balancer runs. Set by
	// setDefaults; tests set it beside EventLoops for a count of loops
	// that does not depend on the machine.
	adaptiveLoops bool
	// Connections is the number of connections from each event loop to
	// each backend (DefaultBackendConnections); a client's commands to a
	// backend all go on one of them, so they stay in order.
	Connections int
	// Timeout bounds how long a command waits for its backend
	// (DefaultBackendTimeout).
	Timeout time.Duration
	// ConnectTimeout bounds a dial to a backend (DefaultConnectTimeout).
	ConnectTimeout time.Duration

	// MaxConnections caps concurrent client connections
	// (DefaultMaxConnections).
	MaxConnections int
	// MaxItemSize is the largest value accepted, in bytes
	// (DefaultMaxItemSize).
	MaxItemSize int
	// ClientIdleTimeout closes a client idle this long; 0 never does.
	ClientIdleTimeout time.Duration
	// ClientOutputLimit is the reply memory held for one client past which
	// its commands are no longer read; twice as much disconnects it
	// (DefaultClientOutputLimit; see output_limit.go).
	ClientOutputLimit int
	// ReqsPerEvent and ReadBytesPerEvent are a client's budget for one turn
	// of its event loop: past either, it yields to the loop's other
	// clients until the next turn (turn_budget.go; DefaultReqsPerEvent,
	// DefaultReadBytesPerEvent).
	ReqsPerEvent      int
	ReadBytesPerEvent int

	// BackendTLS, when set, makes every connection to the backends TLS
	// (tls_backend.go); nil speaks clear text. Clients' TLS is ServeTLS's.
	BackendTLS *BackendTLS
	// PoolTLS is the backend TLS of the pools that have their own
	// (pools.<name>.tls), by pool name: a nil value speaks clear text to
	// the pool's backends, a pool not in the map takes BackendTLS. A
	// server in several pools is one backend, dialled with the TLS of the
	// first pool that lists it (the config refuses pools that disagree).
	// Read at New only: a pool that a Reconfigure adds takes its entry
	// from here, or BackendTLS.
	PoolTLS map[string]*BackendTLS

	// Health configures the checker (with Health.AlwaysUp it tracks the
	// backends but never probes or ejects one).
	Health health.Config
	// AutoEject takes down backends out of the ring so their keys move to
	// the others; when false their keys fail fast instead (config:
	// health.auto_eject, default DefaultAutoEject).
	AutoEject bool
	// FlushOnReadd, with AutoEject, empties an ejected backend with
	// flush_all before it rejoins the ring, so that it never serves values
	// that changed elsewhere while it was out (config: health.flush_on_readd,
	// default DefaultFlushOnReadd).
	FlushOnReadd bool
	// MaxEjected caps the failed backends out of the ring at once
	// (config: health.max_ejected; half the pool).
	MaxEjected EjectionCap

	// DisableFlushAll answers clients' flush_all with memcached -F's
	// refusal instead of flushing every backend (config: disable_flush_all).
	DisableFlushAll bool
	// FailoverTTL caps the expiry of writes to stand-in backends and sets
	// the invalidation window after a ring change (failover.go;
	// DefaultFailoverTTL). Whole seconds count.
	FailoverTTL time.Duration

	// ReservedFds are file descriptors the program embedding the
	// proxy keeps for itself (mcproxy's admin endpoint): the clients'
	// share of the descriptor limit leaves them free (descriptors.go).
	ReservedFds int

	// CommandLatency records the per-command latency histogram that
	// Collector exports. It costs a clock read and an Observe per command,
	// so it is on only when metrics are scraped.
	CommandLatency bool

	// Version is the proxy's version; "version" answers
	// "VERSION " + FullVersion(Version), and "stats" shows the same string.
	Version string
	Logger  *zap.Logger
}

func (o *Options) setDefaults() {
	if o.EventLoops <= 0 {
		o.adaptiveLoops = true
	}
	defaults.Positive(&o.EventLoops, runtime.GOMAXPROCS(0))
	defaults.Positive(&o.Connections, DefaultBackendConnections)
	defaults.Positive(&o.Timeout, DefaultBackendTimeout)
	defaults.Positive(&o.ConnectTimeout, DefaultConnectTimeout)
	defaults.Positive(&o.MaxConnections, DefaultMaxConnections)
	defaults.Positive(&o.MaxItemSize, DefaultMaxItemSize)
	defaults.Positive(&o.ClientOutputLimit, DefaultClientOutputLimit)
	defaults.Positive(&o.ReqsPerEvent, DefaultReqsPerEvent)
	defaults.Positive(&o.ReadBytesPerEvent, DefaultReadBytesPerEvent)
	if o.Version == "" {
		o.Version = "dev"
	}
	defaults.Positive(&o.FailoverTTL, DefaultFailoverTTL)
	// A cap of 0 seconds would mean "never expires" to memcached.
	o.FailoverTTL = max(o.FailoverTTL, MinFailoverTTL)
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}
