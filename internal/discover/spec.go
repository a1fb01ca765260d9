// Package discover finds a pool's backends in DNS: the targets of an SRV
// record, or the addresses of a host name, looked up every interval by a
// Watcher on its own goroutine, off the proxy's event loops. It turns the
// answers into a backend list that changes gently: a failed, timed-out or
// empty lookup changes nothing (a DNS hiccup must never empty a pool), a
// backend leaves only after several answers in a row lack it and never
// more than a cap at once, and new backends join at once (the proxy's
// health probes gate them).
package discover

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Spec's zero fields.
const (
	// DefaultInterval is how often a Watcher looks up.
	DefaultInterval = 5 * time.Second
	// DefaultLookupTimeout bounds one lookup (the SRV or host query and
	// its retries): a silent DNS server delays nothing but the next answer.
	DefaultLookupTimeout = 2 * time.Second
	// DefaultMissingLimit is how many answers in a row must lack a backend
	// before it leaves: one lost record (a pod restarting, a registry
	// agent flapping) does not move its keys.
	DefaultMissingLimit = 3
)

// Spec says where a pool's backends are found. Exactly one of SRV and Host
// is set; Port goes with Host (an SRV record carries its own ports). The
// field names in validation messages are the config keys (srv, host, port,
// interval, resolver, lookup_timeout, missing_limit).
type Spec struct {
	// SRV is the name of an SRV record; each target is a backend named by
	// the target (a StatefulSet pod keeps its name across restarts).
	SRV string
	// Host is a name whose A and AAAA records are the backends, each
	// named by its ip:port.
	Host string
	// Port is the backends' port with Host.
	Port int
	// Interval is the time between lookups; 0 means DefaultInterval.
	Interval time.Duration
	// Resolver is the DNS server (host:port) to ask, such as Consul's
	// 127.0.0.1:8600; empty means the system's (/etc/resolv.conf).
	Resolver string
	// LookupTimeout bounds one lookup; 0 means DefaultLookupTimeout.
	LookupTimeout time.Duration
	// MissingLimit is how many answers in a row must lack a backend before
	// it leaves; 0 means DefaultMissingLimit.
	MissingLimit int
}

// WithDefaults returns s with its zero fields set to the defaults.
func (s Spec) WithDefaults() Spec {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.LookupTimeout == 0 {
		s.LookupTimeout = DefaultLookupTimeout
	}
	if s.MissingLimit == 0 {
		s.MissingLimit = DefaultMissingLimit
	}
	return s
}

// Validate reports the first field of s that is wrong, by its config key.
// Zero Interval, LookupTimeout and MissingLimit are valid (the defaults).
func (s Spec) Validate() error {
	switch {
	case s.SRV == "" && s.Host == "":
		return fmt.Errorf("discover: one of srv and host is required")
	case s.SRV != "" && s.Host != "":
		return fmt.Errorf("discover: srv %q and host %q: set only one", s.SRV, s.Host)
	}
	if s.SRV != "" {
		if err := checkName(s.SRV); err != nil {
			return fmt.Errorf("discover: srv %q: %w", s.SRV, err)
		}
		if s.Port != 0 {
			return fmt.Errorf("discover: port %d: not used with srv (the SRV records carry the ports)", s.Port)
		}
	} else {
		if err := checkName(s.Host); err != nil {
			return fmt.Errorf("discover: host %q: %w", s.Host, err)
		}
		if s.Port < 1 || s.Port > 65535 {
			return fmt.Errorf("discover: port %d: want 1..65535 with host", s.Port)
		}
	}
	if s.Interval < 0 {
		return fmt.Errorf("discover: interval %v: must not be negative", s.Interval)
	}
	if s.LookupTimeout < 0 {
		return fmt.Errorf("discover: lookup_timeout %v: must not be negative", s.LookupTimeout)
	}
	if s.MissingLimit < 0 {
		return fmt.Errorf("discover: missing_limit %d: must not be negative", s.MissingLimit)
	}
	if s.Resolver != "" {
		host, port, err := net.SplitHostPort(s.Resolver)
		if err != nil {
			return fmt.Errorf("discover: resolver %q: want host:port: %w", s.Resolver, err)
		}
		if host == "" {
			return fmt.Errorf("discover: resolver %q: missing host", s.Resolver)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("discover: resolver %q: port %q: want 1..65535", s.Resolver, port)
		}
	}
	return nil
}

// checkName refuses what cannot be a DNS name to look up: a name with a
// port, a path or blanks is a config mistake better named at load.
func checkName(name string) error {
	if len(name) > 254 {
		return fmt.Errorf("longer than a DNS name (253)")
	}
	if i := strings.IndexAny(name, ":/ \t"); i >= 0 {
		return fmt.Errorf("%q is not allowed in a DNS name", name[i])
	}
	if strings.Contains(strings.TrimSuffix(name, "."), "..") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("empty label")
	}
	return nil
}

// The ranges a config accepts for a Spec's tunables (internal/config takes
// them from here). A zero value in a Spec built in code still means the
// default.
const (
	MinInterval      = 100 * time.Millisecond
	MaxInterval      = time.Hour
	MinLookupTimeout = 10 * time.Millisecond
	MaxLookupTimeout = time.Minute
	MinMissingLimit  = 1
	MaxMissingLimit  = 100
)
