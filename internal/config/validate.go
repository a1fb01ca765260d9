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

	"github.com/mcproxy/mcproxy/proxy"
)

// Value ranges; README-config.md documents the same numbers.
const (
	maxWeight            = 1000
	maxPartitions        = 1 << 20
	maxReplicationFactor = 1000
	maxProbeLimit        = 1000
	maxConnsPerBackend   = 64
	maxClientConnections = 1_000_000
)

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

	if c.Listen == "" {
		v.errorf("listen", "must not be empty; e.g. 127.0.0.1:11211")
	} else {
		v.addr("listen", c.Listen, true)
	}
	if c.Admin != "" {
		v.addr("admin", c.Admin, true)
	}
	if c.Pprof && c.Admin == "" && !v.skip("admin") {
		v.errorf("pprof", "true needs admin to be set: /debug/pprof/ is served on the admin address")
	}

	if len(c.Backends) == 0 && !v.skip("backends") {
		v.errorf("backends", "at least one backend is required")
	}
	seen := map[string]int{}
	distinct := []int{} // backends whose address text is valid and not a duplicate
	for i, b := range c.Backends {
		key := fmt.Sprintf("backends[%d]", i)
		if v.skip(key) {
			continue
		}
		if b.Addr == "" {
			v.errorf(key+".addr", "required: the backend's host:port")
		} else if canon, ok := v.addr(key+".addr", b.Addr, false); ok {
			if first, dup := seen[canon]; dup {
				v.errorf(key+".addr", "%s duplicates backends[%d].addr %s", b.Addr, first, c.Backends[first].Addr)
			} else {
				seen[canon] = i
				distinct = append(distinct, i)
			}
		}
		v.intRange(key+".weight", b.Weight, 1, maxWeight)
	}
	v.backendNames(c.Backends)
	v.sameServers(c.Backends, distinct)

	v.intRange("ring.partitions", c.Ring.Partitions, 1, maxPartitions)
	v.intRange("ring.replication_factor", c.Ring.ReplicationFactor, 1, maxReplicationFactor)
	if l := c.Ring.Load; !v.skip("ring.load") && (math.IsNaN(l) || math.IsInf(l, 0) || l < 1) {
		v.errorf("ring.load", "%v must be a finite number >= 1.0 (1.25 lets a backend hold 25%% more than the average)", l)
	}

	v.positive("health.interval", c.Health.Interval)
	v.positive("health.timeout", c.Health.Timeout)
	if c.Health.Timeout > c.Health.Interval && c.Health.Interval > 0 && !v.skip("health.timeout") && !v.skip("health.interval") {
		v.errorf("health.timeout", "%v exceeds health.interval %v", c.Health.Timeout, c.Health.Interval)
	}
	v.intRange("health.failure_limit", c.Health.FailureLimit, 1, maxProbeLimit)
	v.intRange("health.success_limit", c.Health.SuccessLimit, 1, maxProbeLimit)
	if _, _, err := c.Health.MaxEjected.Parse(); err != nil && !v.skip("health.max_ejected") {
		v.errorf("health.max_ejected", "%v", err)
	}

	v.intRange("backend.connections", c.Backend.Connections, 1, maxConnsPerBackend)
	v.positive("backend.timeout", c.Backend.Timeout)
	v.positive("backend.connect_timeout", c.Backend.ConnectTimeout)

	v.intRange("limits.max_connections", c.Limits.MaxConnections, 1, maxClientConnections)
	if n := int64(c.Limits.MaxItemSize); !v.skip("limits.max_item_size") && (n < minItemSize || n > maxItemSize) {
		v.errorf("limits.max_item_size", "%s is out of range %s..%s (%d..%d bytes)",
			formatSize(n), formatSize(minItemSize), formatSize(maxItemSize), minItemSize, maxItemSize)
	}
	if n := int64(c.Limits.ClientOutputLimit); !v.skip("limits.client_output_limit") && (n < minClientOutputLimit || n > maxClientOutputLimit) {
		v.errorf("limits.client_output_limit", "%s is out of range %s..%s (%d..%d bytes)",
			formatSize(n), formatSize(minClientOutputLimit), formatSize(maxClientOutputLimit), minClientOutputLimit, maxClientOutputLimit)
	}
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
	return v.problems
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
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(key, "%q is not host:port: %v", s, unwrapAddrErr(err))
		return "", false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		v.errorf(key, "%q: port %q must be a number 1..65535", s, port)
		return "", false
	}
	if host == "" && !listening {
		v.errorf(key, "%q: the host must not be empty", s)
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(n, 10)), true
}

// unwrapAddrErr drops the address that net.AddrError repeats.
func unwrapAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}
