package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
)

// The ranges checked here are the owning packages' Min* and Max* constants
// (ring, health, proxy); docs/configuration.md's table states the same
// numbers and TestConfigPageTable holds it to them.

// Validate checks a config built in code (Load and Parse already validate
// what they return). The error joins every problem found, each naming its
// dotted key.
func (c Config) Validate() error {
	ps := validate(c, nil, nil)
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// validate checks every value and the rules between values. lines gives the
// line of each key that was in the file; keys in bad could not be read and
// have already been reported, so they are skipped here.
func validate(c Config, lines map[string]int, bad map[string]bool) []problem {
	v := &validator{lines: lines, bad: bad}

	v.endpoints(c)

	if len(c.Backends) == 0 && len(c.Pools) == 0 && !v.skip("backends") && !v.skip("pools") {
		v.errorf("backends", "at least one backend is required (or a pool under pools:)")
	}
	v.backendList("backends", c.Backends)
	v.replicas(c)
	v.pools(c)
	v.routes(c)

	v.intRange("ring.partitions", c.Ring.Partitions, ring.MinPartitions, ring.MaxPartitions)
	v.intRange("ring.replication_factor", c.Ring.ReplicationFactor, ring.MinReplicationFactor, ring.MaxReplicationFactor)
	v.ringLoad("ring.load", c.Ring.Load)

	v.positive("health.interval", c.Health.Interval)
	v.positive("health.timeout", c.Health.Timeout)
	if c.Health.Timeout > c.Health.Interval && c.Health.Interval > 0 && !v.skip("health.timeout") && !v.skip("health.interval") {
		v.errorf("health.timeout", "%v exceeds health.interval %v", c.Health.Timeout, c.Health.Interval)
	}
	v.intRange("health.failure_limit", c.Health.FailureLimit, health.MinFailureLimit, health.MaxFailureLimit)
	v.intRange("health.success_limit", c.Health.SuccessLimit, health.MinSuccessLimit, health.MaxSuccessLimit)
	if _, _, err := c.Health.MaxEjected.Parse(); err != nil && !v.skip("health.max_ejected") {
		v.errorf("health.max_ejected", "%v", err)
	}

	v.intRange("event_loops", c.EventLoops, 0, proxy.MaxEventLoops)
	v.intRange("backend.connections", c.Backend.Connections, proxy.MinBackendConnections, proxy.MaxBackendConnections)
	v.positive("backend.timeout", c.Backend.Timeout)
	v.positive("backend.connect_timeout", c.Backend.ConnectTimeout)

	v.intRange("limits.max_connections", c.Limits.MaxConnections, proxy.MinMaxConnections, proxy.MaxMaxConnections)
	v.sizeRange("limits.max_item_size", c.Limits.MaxItemSize, proxy.MinMaxItemSize, proxy.MaxMaxItemSize)
	v.sizeRange("limits.client_output_limit", c.Limits.ClientOutputLimit, proxy.MinClientOutputLimit, proxy.MaxClientOutputLimit)
	v.intRange("limits.reqs_per_event", c.Limits.ReqsPerEvent, proxy.MinReqsPerEvent, proxy.MaxReqsPerEvent)
	v.sizeRange("limits.read_bytes_per_event", c.Limits.ReadBytesPerEvent, proxy.MinReadBytesPerEvent, proxy.MaxReadBytesPerEvent)
	if d := c.Limits.ClientIdleTimeout; d < 0 && !v.skip("limits.client_idle_timeout") {
		v.errorf("limits.client_idle_timeout", "%v must not be negative (0 means never)", d)
	}
	if d := c.Failover.TTL; !v.skip("failover.ttl") {
		if d < proxy.MinFailoverTTL || d > proxy.MaxFailoverTTL {
			v.errorf("failover.ttl", "%v is out of range %v..%v", d, proxy.MinFailoverTTL, proxy.MaxFailoverTTL)
		} else if d%time.Second != 0 {
			v.errorf("failover.ttl", "%v must be whole seconds: memcached expiry times are", d)
		}
	}
	v.tls(c) // tls.go
	return v.problems
}

// backendList checks the backends of the list at key ("backends",
// "pools.main.backends"): each address and weight, no address twice, the
// names, and no two addresses that resolve to one server.
func (v *validator) backendList(key string, bs []Backend) {
	seen := map[string]int{}
	distinct := []int{} // backends whose address text is valid and not a duplicate
	for i, b := range bs {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		if v.skip(ikey) {
			continue
		}
		if b.Addr == "" {
			v.errorf(ikey+".addr", "required: the backend's host:port")
		} else if canon, ok := v.addr(ikey+".addr", b.Addr, false); ok {
			if first, dup := seen[canon]; dup {
				v.errorf(ikey+".addr", "%s duplicates %s[%d].addr %s", b.Addr, key, first, bs[first].Addr)
			} else {
				seen[canon] = i
				distinct = append(distinct, i)
			}
		}
		v.intRange(ikey+".weight", b.Weight, ring.MinWeight, ring.MaxWeight)
	}
	v.backendNames(key, bs)
	v.sameServers(key, bs, distinct)
}

// ringLoad checks a ring's load bound.
func (v *validator) ringLoad(key string, l float64) {
	if !v.skip(key) && (math.IsNaN(l) || math.IsInf(l, 0) || l < ring.MinLoad) {
		v.errorf(key, "%v must be a finite number >= %.1f (1.25 lets a backend hold 25%% more than the average)", l, ring.MinLoad)
	}
}

type validator struct {
	lines    map[string]int
	bad      map[string]bool
	problems []problem
}

// skip reports a key whose value was unreadable and already reported.
func (v *validator) skip(key string) bool { return v.bad[key] }

// errorf reports a problem with key, at the key's line when the file had
// it, else at the line of the nearest enclosing key the file had (a missing
// backends[0].addr is reported at the line of backends[0]).
func (v *validator) errorf(key, format string, args ...any) {
	v.problems = append(v.problems, problem{line: v.lineOf(key), msg: key + ": " + fmt.Sprintf(format, args...)})
}

func (v *validator) lineOf(key string) int {
	for k := key; k != ""; {
		if line, ok := v.lines[k]; ok {
			return line
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func (v *validator) intRange(key string, n, lo, hi int) {
	if !v.skip(key) && (n < lo || n > hi) {
		v.errorf(key, "%d is out of range %d..%d", n, lo, hi)
	}
}

// sizeRange is intRange for byte sizes, which it writes as the file
// would (1m) and in bytes.
func (v *validator) sizeRange(key string, size int, lo, hi int64) {
	if n := int64(size); !v.skip(key) && (n < lo || n > hi) {
		v.errorf(key, "%s is out of range %s..%s (%d..%d bytes)", formatSize(n), formatSize(lo), formatSize(hi), lo, hi)
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if !v.skip(key) && d <= 0 {
		v.errorf(key, "%v must be greater than 0", d)
	}
}

// addr checks a host:port address with a numeric port 1..65535. A listening
// address may leave the host empty (all interfaces); a backend may not. It
// returns a canonical form (lower-case host, normalized IP, plain port) for
// spotting duplicates.
func (v *validator) addr(key, s string, listening bool) (string, bool) {
	if v.skip(key) {
		return "", false
	}
	canon, err := canonicalAddr(s, listening)
	if err != nil {
		v.errorf(key, "%v", err)
		return "", false
	}
	return canon, true
}

// canonicalAddr is addr's check and canonical form, without reporting.
func canonicalAddr(s string, listening bool) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %v", s, unwrapAddrErr(err))
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("%q: port %q must be a number 1..65535", s, port)
	}
	if host == "" && !listening {
		return "", fmt.Errorf("%q: the host must not be empty", s)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(n, 10)), nil
}

// unwrapAddrErr drops the address that net.AddrError repeats.
func unwrapAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// endpoints checks what mcproxy listens on: listen, admin (and pprof on
// it), upgrade_socket.
func (v *validator) endpoints(c Config) {
	if c.Listen == "" && c.TLS.Listen == "" {
		v.errorf("listen", "must not be empty (unless tls.listen is set); e.g. %s", DefaultListen)
	} else if c.Listen != "" {
		v.addr("listen", c.Listen, true)
	}
	if c.Admin != "" {
		v.addr("admin", c.Admin, true)
	}
	if c.UpgradeSocket != "" {
		v.upgradeSocket(c)
	}
	if c.Pprof && c.Admin == "" && !v.skip("admin") {
		v.errorf("pprof", "true needs admin to be set: /debug/pprof/ is served on the admin address")
	}
}

// maxUnixPath is the longest path a Unix socket address holds on Linux
// (sun_path, less its terminating NUL).
const maxUnixPath = 107

// upgradeSocket checks upgrade_socket: an absolute path short enough for a
// socket address, with reuse_port on, since the new process of an upgrade
// binds the admin port (and, if the old process does not answer, the
// listen port) while the old one holds them.
func (v *validator) upgradeSocket(c Config) {
	const key = "upgrade_socket"
	if v.skip(key) {
		return
	}
	switch {
	case !strings.HasPrefix(c.UpgradeSocket, "/"):
		v.errorf(key, "%q must be an absolute path", c.UpgradeSocket)
	case len(c.UpgradeSocket) > maxUnixPath:
		v.errorf(key, "%q is %d bytes long; a Unix socket path holds at most %d", c.UpgradeSocket,
			len(c.UpgradeSocket), maxUnixPath)
	}
	if !c.ReusePort && !v.skip("reuse_port") {
		v.errorf(key, "needs reuse_port: true: the new process binds the same ports while the old one holds them")
	}
}
