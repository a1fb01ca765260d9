package twemimport

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcproxy/mcproxy/ring"
)

// noEquivalent says, for each pool setting mcproxy has no counterpart of,
// why; the conversion writes it as a comment when the pool sets it.
var noEquivalent = map[string]string{
	"preconnect": "mcproxy always connects to every backend at start and keeps the connections",
	"backlog":    "mcproxy's listen backlog is the system's (net.core.somaxconn)",
	"client_connections": "twemproxy 0.5.0 reads but does not enforce it; mcproxy's cap on clients is " +
		"limits.max_connections, over all of them",
	"server_connections": "mcproxy's backend.connections (default 1) is per event loop and per backend; " +
		"each connection pipelines every client of its loop",
	"tcpkeepalive": "mcproxy's backend connections are always busy or probed; clients idle out by " +
		"limits.client_idle_timeout",
	"redis_auth": "mcproxy speaks only memcached",
	"redis_db":   "mcproxy speaks only memcached",
}

// pool writes one pool of the pools section under name.
func (o *output) pool(name string, p pool) error {
	for _, key := range poolKeys {
		if why, ok := noEquivalent[key]; ok {
			if v, set := p.values[key]; set {
				o.note("  %s: %s %s has no equivalent: %s.", p.name, key, v, why)
			}
		}
	}
	o.line("  %s:", name)
	dist := p.values["distribution"]
	switch dist {
	case "", ring.DistKetama:
		dist = ring.DistKetama
	case ring.DistModula:
	case "random":
		o.note("    distribution random has no equivalent: twemproxy sent each command to a random")
		o.note("    server, so a read found a value only where its write happened to go; no placement")
		o.note("    can keep that cache. mcproxy's ring places the keys instead (the cache starts cold).")
		dist = ring.DistRing
	default:
		return fmt.Errorf("pool %s: unknown distribution %q (twemproxy has ketama, modula and random)", p.name, dist)
	}
	o.line("    distribution: %s", dist)
	if dist != ring.DistRing {
		hash := p.values["hash"]
		if hash == "" {
			hash = ring.DefaultHash
		}
		if !slices.Contains(ring.HashNames(), hash) {
			return fmt.Errorf("pool %s: unknown hash %q, want one of %s", p.name, hash, strings.Join(ring.HashNames(), ", "))
		}
		o.line("    hash: %s", hash)
	}
	if tag, ok := p.values["hash_tag"]; ok {
		o.line("    hash_tag: %s", quote(tag))
	}
	return o.backends(p, dist)
}

// backends writes a pool's servers as backends: address, weight, and the
// name when the server line has one (ketama hashes it, as twemproxy does).
// A modula pool lists them in twemproxy's order, which its modulo counts
// in.
func (o *output) backends(p pool, dist string) error {
	servers := make([]ring.Server, len(p.servers))
	for i, s := range p.servers {
		if s.weight > ring.MaxWeight {
			return fmt.Errorf("pool %s: server %s has weight %d; mcproxy's weights are %d..%d",
				p.name, s.addr(), s.weight, ring.MinWeight, ring.MaxWeight)
		}
		servers[i] = ring.Server{Name: s.name, Addr: s.addr(), Weight: s.weight}
	}
	order := make([]int, len(servers))
	for i := range order {
		order[i] = i
	}
	if dist == ring.DistModula {
		var err error
		if order, err = ring.TwemproxyOrder(servers); err != nil {
			return fmt.Errorf("pool %s: %w", p.name, err)
		}
		if !slices.IsSorted(order) {
			o.note("    In twemproxy's order (by name, shorter first), which its modula counts in: keep it.")
		}
	}
	o.line("    backends:")
	for _, i := range order {
		s := servers[i]
		if s.Name != "" {
			o.line("      - {name: %s, addr: %s, weight: %d}", quote(s.Name), quote(s.Addr), s.Weight)
		} else {
			o.line("      - {addr: %s, weight: %d}", quote(s.Addr), s.Weight)
		}
	}
	return nil
}
