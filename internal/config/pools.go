package config

import (
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"go.yaml.in/yaml/v3"
)

// Pool is one entry of the file's pools: mapping, a named set of backends
// with its own placement. In YAML:
//
//	pools:
//	  main:
//	    backends: [10.0.0.1:11211, {addr: 10.0.0.2:11211, weight: 2}]
//	    distribution: ketama
//	    hash: fnv1a_64
//
// The keys of a pool are written pools.<name>.backends and so on.
type Pool struct {
	// Name is the pool's key in the pools mapping: routes name it, and it
	// labels the pool's stats and metrics. At most 250 bytes, no spaces or
	// control characters; not proxy.DefaultPoolName when the top-level
	// backends are that pool.
	Name string `yaml:"-"`
	// Backends have the syntax and rules of the top-level backends. A
	// server may be in several pools, under one name.
	Backends []Backend `yaml:"backends"`
	// Distribution is one of ring.Distributions(); Load and Parse fill in
	// ring.DistRing when the file leaves it out.
	Distribution string `yaml:"distribution"`
	// Hash is the key hash of ketama and modula, one of ring.HashNames();
	// Load and Parse fill in ring.DefaultHash for them. Empty for the
	// other distributions, whose key hash is fixed.
	Hash string `yaml:"hash"`
	// HashTag is "" or two bytes such as "{}": only the part of a key
	// between them is hashed.
	HashTag string `yaml:"hash_tag"`
	// Ring tunes a pool of distribution ring: Load and Parse fill in the
	// top-level ring's values for the keys its ring section leaves out
	// (all of them when it has none). Zero for the other distributions.
	Ring Ring `yaml:"ring"`
	// Replicas is the number of the pool's backends that hold each key,
	// proxy.MinReplicas..proxy.MaxReplicas; Load and Parse fill in the
	// top-level replicas when the file leaves it out.
	Replicas int `yaml:"replicas"`
	// Discover finds the pool's backends in DNS instead (discover.go);
	// zero when Backends lists them.
	Discover Discover `yaml:"discover"`
	// TLS is the pool's backend TLS, the keys of backend.tls; Load and
	// Parse fill in backend.tls when the file has no pools.<name>.tls (a
	// section the file writes is whole: its left-out keys are off, not
	// backend.tls's). A server in several pools must have the same TLS in
	// each (validate_pools.go).
	TLS BackendTLS `yaml:"tls"`
}

// Route is one entry of the file's routes: list. In YAML:
//
//	routes:
//	  - {prefix: "sess:", pool: sessions}
//	  - {pool: main, warm_from: old}
type Route struct {
	// Prefix selects the keys that start with it; "" matches every key
	// (the default route, which must come last). At most
	// protocol.MaxKeyLength bytes, no spaces or control characters (no key
	// could start with them).
	Prefix string `yaml:"prefix"`
	// Pool is the name of the pool that serves the keys.
	Pool string `yaml:"pool"`
	// WarmFrom names another pool that held these keys before: reads that
	// miss on Pool are retried there and copied, writes and deletes also
	// delete the old copy. Empty: none.
	WarmFrom string `yaml:"warm_from"`
}

// PoolList returns every pool of c in the order the proxy and -check list
// them: the top-level backends as proxy.DefaultPoolName first, if any,
// then Pools in the order of the file.
func (c Config) PoolList() []Pool {
	var out []Pool
	if len(c.Backends) > 0 {
		out = append(out, Pool{Name: proxy.DefaultPoolName, Backends: c.Backends, Distribution: ring.DistRing, Ring: c.Ring,
			Replicas: c.Replicas, TLS: c.Backend.TLS})
	}
	return append(out, c.Pools...)
}

// RouteList returns c's routes, or with no routes and a single pool the
// default route to it that the file implies.
func (c Config) RouteList() []Route {
	if len(c.Routes) > 0 {
		return c.Routes
	}
	if pools := c.PoolList(); len(pools) == 1 {
		return []Route{{Pool: pools[0].Name}}
	}
	return nil
}

// Placement returns the ring.PlacementOptions of pool p of c. A pool of
// distribution ring with a zero Ring (a Config built in code) takes c's
// ring.
func (c Config) Placement(p Pool) ring.PlacementOptions {
	o := ring.PlacementOptions{Distribution: p.Distribution, Hash: p.Hash, HashTag: p.HashTag}
	if p.Distribution == "" || p.Distribution == ring.DistRing {
		r := p.Ring
		if r == (Ring{}) {
			r = c.Ring
		}
		o.Ring = ring.Config{Partitions: r.Partitions, ReplicationFactor: r.ReplicationFactor, Load: r.Load}
	} else if p.Ring != (Ring{}) {
		o.Ring = ring.Config{Partitions: p.Ring.Partitions, ReplicationFactor: p.Ring.ReplicationFactor, Load: p.Ring.Load}
	}
	return o
}

// PlacementServers lists a pool's backends as ring.NewPlacement takes
// them.
func PlacementServers(bs []Backend) []ring.Server {
	s := make([]ring.Server, len(bs))
	for i, b := range bs {
		s[i] = ring.Server{Name: b.Name, Addr: b.Addr, Weight: b.Weight}
	}
	return s
}

// pools reads the pools: mapping, pool name to pool, in file order.
func (p *parser) pools(dst *[]Pool) field {
	return func(key string, v *yaml.Node) {
		if v.Kind != yaml.MappingNode {
			p.typeError(key, v, "a mapping of pool names to pools")
			return
		}
		var list []Pool
		seen := map[string]int{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, body := deref(v.Content[i]), deref(v.Content[i+1])
			if k.Kind != yaml.ScalarNode {
				p.errorf(k.Line, "%s: pool names must be plain names, got %s", key, describe(k))
				continue
			}
			pkey := key + "." + k.Value
			if first, dup := seen[k.Value]; dup {
				p.errorf(k.Line, "%s: pool repeated (first at line %d)", pkey, first)
				continue
			}
			seen[k.Value] = k.Line
			p.lines[pkey] = k.Line
			pl := Pool{Name: k.Value, TLS: defaultBackendTLS()}
			if isNull(body) {
				p.bad[pkey] = true
				p.errorf(k.Line, "%s: empty pool; want a mapping with backends", pkey)
			} else {
				p.mapping(pkey, body, p.poolFields(&pl))
			}
			list = append(list, pl)
		}
		*dst = list
	}
}

// poolFields are the keys of one pool.
func (p *parser) poolFields(pl *Pool) map[string]field {
	return map[string]field{
		"backends":     p.backends(&pl.Backends),
		"distribution": p.str(&pl.Distribution),
		"hash":         p.str(&pl.Hash),
		"hash_tag":     p.str(&pl.HashTag),
		"replicas":     p.integer(&pl.Replicas),
		"discover":     p.discoverFields(&pl.Discover),
		"tls":          p.backendTLSFields(&pl.TLS),
		"ring": p.section(map[string]field{
			"partitions":         p.integer(&pl.Ring.Partitions),
			"replication_factor": p.integer(&pl.Ring.ReplicationFactor),
			"load":               p.float(&pl.Ring.Load),
		}),
	}
}

// routes reads the routes: list of {prefix, pool, warm_from}.
func (p *parser) routes(dst *[]Route) field {
	return func(key string, v *yaml.Node) {
		list := make([]Route, 0, len(v.Content))
		ok := p.list(key, v, "a list of routes", func(ikey string, item *yaml.Node) {
			var r Route
			if item.Kind != yaml.MappingNode {
				p.bad[ikey] = true
				p.errorf(item.Line, "%s: want a mapping {prefix: ..., pool: ...}, got %s", ikey, describe(item))
			} else {
				p.mapping(ikey, item, map[string]field{
					"prefix":    p.str(&r.Prefix),
					"pool":      p.str(&r.Pool),
					"warm_from": p.str(&r.WarmFrom),
				})
			}
			list = append(list, r)
		})
		if !ok {
			return
		}
		if len(list) == 0 {
			list = nil // as if left out, which it means
		}
		*dst = list
	}
}

// fillPoolDefaults gives each pool what the file leaves out, once the
// whole file is read (the top-level ring may come after the pools): the
// distribution ring, the default hash of ketama and modula, and for ring
// the top-level ring's value of each ring key the pool does not set, and
// the top-level replicas.
func (p *parser) fillPoolDefaults(c *Config) {
	for i := range c.Pools {
		pl := &c.Pools[i]
		key := "pools." + pl.Name
		if !p.has(key + ".replicas") {
			pl.Replicas = c.Replicas
		}
		p.fillDiscoverDefaults(key+".discover", &pl.Discover)
		if !p.has(key + ".tls") {
			pl.TLS = c.Backend.TLS
		}
		if pl.Distribution == "" {
			pl.Distribution = ring.DistRing
		}
		if (pl.Distribution == ring.DistKetama || pl.Distribution == ring.DistModula) && pl.Hash == "" {
			pl.Hash = ring.DefaultHash
		}
		if pl.Distribution != ring.DistRing {
			continue
		}
		if !p.has(key + ".ring.partitions") {
			pl.Ring.Partitions = c.Ring.Partitions
		}
		if !p.has(key + ".ring.replication_factor") {
			pl.Ring.ReplicationFactor = c.Ring.ReplicationFactor
		}
		if !p.has(key + ".ring.load") {
			pl.Ring.Load = c.Ring.Load
		}
	}
}

// has reports whether the file set key to a value (not left empty).
func (p *parser) has(key string) bool {
	_, ok := p.lines[key]
	return ok && !p.bad[key] && !p.null[key]
}
