package config

import (
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/discover"
)

// Discover is a pool's discover: section: its backends are found in DNS
// (internal/discover) instead of listed. In YAML:
//
//	pools:
//	  main:
//	    discover:
//	      srv: _memcache._tcp.memcached.default.svc.cluster.local
//	      interval: 5s
//
// A pool has either backends or discover. The keys are written
// pools.<name>.discover.srv and so on; changes apply after a restart.
type Discover struct {
	// SRV is the name of an SRV record whose targets are the backends,
	// each named by its target (its keys follow the name across
	// addresses).
	SRV string `yaml:"srv"`
	// Host is a name whose A/AAAA records are the backends, each named by
	// its ip:port. Exactly one of SRV and Host.
	Host string `yaml:"host"`
	// Port is the backends' port with Host, 1..65535.
	Port int `yaml:"port"`
	// Interval is the time between lookups,
	// discover.MinInterval..discover.MaxInterval.
	Interval time.Duration `yaml:"interval"`
	// Resolver is the DNS server host:port to ask; empty: the system's.
	Resolver string `yaml:"resolver"`
	// LookupTimeout bounds one lookup,
	// discover.MinLookupTimeout..discover.MaxLookupTimeout.
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// MissingLimit is how many answers in a row must lack a backend before
	// it leaves the pool, discover.MinMissingLimit..discover.MaxMissingLimit.
	MissingLimit int `yaml:"missing_limit"`
}

// Set reports whether the pool's backends come from DNS.
func (d Discover) Set() bool { return d != (Discover{}) }

// Spec is d as the discover package takes it.
func (d Discover) Spec() discover.Spec {
	return discover.Spec{SRV: d.SRV, Host: d.Host, Port: d.Port, Interval: d.Interval,
		Resolver: d.Resolver, LookupTimeout: d.LookupTimeout, MissingLimit: d.MissingLimit}
}

// discoverFields are the keys of a pool's discover: section.
func (p *parser) discoverFields(d *Discover) field {
	return p.section(map[string]field{
		"srv":            p.str(&d.SRV),
		"host":           p.str(&d.Host),
		"port":           p.integer(&d.Port),
		"interval":       p.duration(&d.Interval),
		"resolver":       p.str(&d.Resolver),
		"lookup_timeout": p.duration(&d.LookupTimeout),
		"missing_limit":  p.integer(&d.MissingLimit),
	})
}

// fillDiscoverDefaults gives a discovered pool the discover package's
// defaults for the keys the file leaves out.
func (p *parser) fillDiscoverDefaults(key string, d *Discover) {
	if !d.Set() {
		return
	}
	if !p.has(key + ".interval") {
		d.Interval = discover.DefaultInterval
	}
	if !p.has(key + ".lookup_timeout") {
		d.LookupTimeout = discover.DefaultLookupTimeout
	}
	if !p.has(key + ".missing_limit") {
		d.MissingLimit = discover.DefaultMissingLimit
	}
}

// discovered checks a pool's discover section, each problem at its key:
// srv or host (with port), the ranges, the resolver's address, and that
// the pool lists no backends beside it.
func (v *validator) discovered(pool string, pl Pool) {
	key := pool + ".discover"
	d := pl.Discover
	if v.skip(key) {
		return
	}
	if len(pl.Backends) > 0 && !v.skip(pool+".backends") {
		v.errorf(key, "a pool has either backends or discover, not both")
	}
	switch {
	case d.SRV == "" && d.Host == "":
		v.errorf(key, "one of srv and host is required")
	case d.SRV != "" && d.Host != "":
		v.errorf(key+".host", "set only one of srv and host")
	case d.SRV != "" && d.Port != 0:
		v.errorf(key+".port", "not used with srv: the SRV records carry the ports")
	case d.Host != "" && v.lines[key+".port"] == 0 && !v.skip(key+".port"):
		v.errorf(key+".port", "required with host")
	case d.Host != "":
		v.intRange(key+".port", d.Port, 1, 65535)
	}
	v.durationRange(key+".interval", d.Interval, discover.MinInterval, discover.MaxInterval)
	v.durationRange(key+".lookup_timeout", d.LookupTimeout, discover.MinLookupTimeout, discover.MaxLookupTimeout)
	v.intRange(key+".missing_limit", d.MissingLimit, discover.MinMissingLimit, discover.MaxMissingLimit)
	if d.Resolver != "" {
		v.addr(key+".resolver", d.Resolver, false)
	}
	// The names themselves, as the Watcher checks them.
	if err := d.Spec().Validate(); err != nil && len(v.problems) == 0 {
		field := "srv"
		if d.SRV == "" {
			field = "host"
		}
		v.errorf(key+"."+field, "%s", strings.TrimPrefix(err.Error(), "discover: "))
	}
}

// durationRange is intRange for durations.
func (v *validator) durationRange(key string, d, lo, hi time.Duration) {
	if !v.skip(key) && (d < lo || d > hi) {
		v.errorf(key, "%v is out of range %v..%v", d, lo, hi)
	}
}
