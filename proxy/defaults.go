package proxy

import (
	"time"

	"github.com/mcproxy/mcproxy/protocol"
)

// Defaults and ranges of the Options that the config file's backend,
// limits and health sections set. Options.setDefaults applies the defaults
// to zero fields; internal/config builds its defaults and its validation
// from these same names, and a test there checks them against the table of
// docs/configuration.md. The ones that belong with their mechanism are
// declared beside it: DefaultClientOutputLimit (output_limit.go),
// DefaultFailoverTTL and its range (failover.go), DefaultMaxEjectedPercent
// (ejection.go). Ring and health settings are in ring/ and health/.

// Event loops (config: event_loops).
const (
	// DefaultEventLoops is Options.EventLoops' default, 0: one loop per CPU
	// the process may use (runtime.GOMAXPROCS, which follows the CPU
	// affinity and, from Go 1.25, the container's CPU limit).
	DefaultEventLoops = 0
	// MaxEventLoops bounds Options.EventLoops: each loop holds its own
	// connections to every backend, so a typo must not open thousands.
	MaxEventLoops = 256
)

// Connections to each backend (config: backend.*).
const (
	// DefaultBackendConnections is Options.Connections' default: one
	// connection from each event loop to each backend, onto which every
	// request of the loop's clients to that backend is pipelined. One is
	// where batching is best: a second connection per loop halves the
	// commands per write (make compare, single get at 1 in flight: 11.3
	// against 9.3 µs of CPU per key).
	DefaultBackendConnections = 1
	// MinBackendConnections and MaxBackendConnections bound
	// Options.Connections. With pipelining a few connections carry the
	// load; the cap catches a typo that would open thousands per backend.
	MinBackendConnections = 1
	MaxBackendConnections = 64
	// DefaultBackendTimeout is Options.Timeout's default: how long a
	// command waits for its backend before it fails (or misses).
	DefaultBackendTimeout = time.Second
	// DefaultConnectTimeout is Options.ConnectTimeout's default.
	DefaultConnectTimeout = 500 * time.Millisecond
)

// Client limits (config: limits.*).
const (
	// DefaultMaxConnections is Options.MaxConnections' default.
	DefaultMaxConnections = 10000
	// MinMaxConnections and MaxMaxConnections bound Options.MaxConnections.
	MinMaxConnections = 1
	MaxMaxConnections = 1_000_000
	// DefaultMaxItemSize is Options.MaxItemSize's default, memcached's own
	// (-I 1m).
	DefaultMaxItemSize = protocol.DefaultMaxItemSize
	// MinMaxItemSize and MaxMaxItemSize bound Options.MaxItemSize to
	// memcached's -I range, 1k..1g: a proxy that took larger items than
	// its backends could store would only turn them into errors.
	MinMaxItemSize = 1 << 10
	MaxMaxItemSize = 1 << 30
	// DefaultClientIdleTimeout is Options.ClientIdleTimeout's default:
	// never, as memcached (its idle_timeout is 0 unless set).
	DefaultClientIdleTimeout time.Duration = 0
	// MinClientOutputLimit and MaxClientOutputLimit bound
	// Options.ClientOutputLimit (default DefaultClientOutputLimit). The
	// floor leaves room for a few replies of the default item size; the
	// top keeps twice the limit, the disconnect point, far from overflow.
	MinClientOutputLimit = 1 << 20
	MaxClientOutputLimit = 4 << 30
)

// Ejection (config: health.auto_eject, health.flush_on_readd). They are
// bools, so Options' zero value cannot mean them: a caller of New sets
// AutoEject and FlushOnReadd itself; internal/config defaults them to these.
const (
	// DefaultAutoEject takes down backends out of the ring, so their keys
	// move to live backends instead of failing.
	DefaultAutoEject = true
	// DefaultFlushOnReadd flushes a backend before it rejoins the ring: a
	// backend that was only frozen or cut off would otherwise serve values
	// that were changed elsewhere while it was out.
	DefaultFlushOnReadd = true
)
