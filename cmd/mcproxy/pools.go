package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
)

// poolsFrom maps the config's pools and routes onto the proxy's: the
// top-level backends as the pool proxy.DefaultPoolName first, if any, then
// the named pools in file order, and the routes (with one pool and none
// written, the default route to it). A config without pools or routes
// gives nil, nil: its backends go to the proxy as Options.Backends, as
// they always have, and keep their placement. A pool found in DNS takes
// its list from found (discoveredPools).
func poolsFrom(cfg config.Config, found map[string][]proxy.Backend) ([]proxy.Pool, []proxy.Route) {
	if len(cfg.Pools) == 0 && len(cfg.Routes) == 0 {
		return nil, nil
	}
	var pools []proxy.Pool
	for _, pl := range cfg.PoolList() {
		bs := proxyBackends(pl.Backends)
		if pl.Discover.Set() {
			bs = found[pl.Name]
		}
		pools = append(pools, proxy.Pool{Name: pl.Name, Backends: bs, Placement: cfg.Placement(pl), Replicas: pl.Replicas})
	}
	var routes []proxy.Route
	for _, r := range cfg.RouteList() {
		routes = append(routes, proxy.Route{Prefix: r.Prefix, Pool: r.Pool, WarmFrom: r.WarmFrom})
	}
	return pools, routes
}

// proxyBackends maps a config backend list onto the proxy's.
func proxyBackends(bs []config.Backend) []proxy.Backend {
	out := make([]proxy.Backend, len(bs))
	for i, b := range bs {
		out[i] = proxy.Backend{Name: b.Name, Addr: b.Addr, Weight: b.Weight, Zone: b.Zone}
	}
	return out
}

// listedBackend is a server of the config and the key of its first
// listing ("backends[1]", "pools.main.backends[0]").
type listedBackend struct {
	key string
	config.Backend
}

// configServers lists every server of the config once, in the order of
// its first listing: a server in several pools is one backend.
func configServers(cfg config.Config) []listedBackend {
	var out []listedBackend
	seen := map[string]bool{}
	add := func(list string, bs []config.Backend) {
		for i, b := range bs {
			if !seen[b.Addr] {
				seen[b.Addr] = true
				out = append(out, listedBackend{key: fmt.Sprintf("%s[%d]", list, i), Backend: b})
			}
		}
	}
	add("backends", cfg.Backends)
	for _, pl := range cfg.Pools {
		add("pools."+pl.Name+".backends", pl.Backends)
	}
	return out
}

// printPools writes what -check shows after its first line: each pool's
// placement with the defaults filled in and its backends, then each route
// in the order they are tried.
func printPools(out io.Writer, cfg config.Config) {
	for _, pl := range cfg.PoolList() {
		if pl.Discover.Set() {
			printDiscovered(out, cfg, pl)
			continue
		}
		p, err := ring.NewPlacement(config.PlacementServers(pl.Backends), cfg.Placement(pl))
		if err != nil {
			// Validation built this placement; this is not reached.
			fmt.Fprintf(out, "pool %s: %v\n", pl.Name, err)
			continue
		}
		n := fmt.Sprintf("%d backends", len(pl.Backends))
		if len(pl.Backends) == 1 {
			n = "1 backend"
		}
		if pl.Replicas > 1 {
			n += fmt.Sprintf(", %d copies of each key", min(pl.Replicas, len(pl.Backends)))
		}
		fmt.Fprintf(out, "pool %s: %s, %s\n", pl.Name, describePlacement(p.Options()), n)
		for _, b := range pl.Backends {
			zone := ""
			if b.Zone != "" {
				zone = " zone " + b.Zone
			}
			if b.Name != "" {
				fmt.Fprintf(out, "  %s %s weight %d%s\n", b.Name, b.Addr, b.Weight, zone)
			} else {
				fmt.Fprintf(out, "  %s weight %d%s\n", b.Addr, b.Weight, zone)
			}
		}
	}
	for _, r := range cfg.RouteList() {
		prefix := "(default)"
		if r.Prefix != "" {
			prefix = fmt.Sprintf("prefix %q", r.Prefix)
		}
		fmt.Fprintf(out, "route %s -> %s", prefix, r.Pool)
		if r.WarmFrom != "" {
			fmt.Fprintf(out, ", warm from %s", r.WarmFrom)
		}
		fmt.Fprintln(out)
	}
}

// printDiscovered writes what -check shows of a pool found in DNS: its
// placement and what is looked up, and how often.
func printDiscovered(out io.Writer, cfg config.Config, pl config.Pool) {
	p, err := ring.NewPlacement([]ring.Server{{Addr: "stand-in:1"}}, cfg.Placement(pl))
	if err != nil {
		fmt.Fprintf(out, "pool %s: %v\n", pl.Name, err) // validation built it; not reached
		return
	}
	d := pl.Discover
	what := "SRV " + d.SRV
	if d.SRV == "" {
		what = fmt.Sprintf("host %s port %d", d.Host, d.Port)
	}
	resolver := "the system's resolver"
	if d.Resolver != "" {
		resolver = d.Resolver
	}
	fmt.Fprintf(out, "pool %s: %s, backends from DNS: %s every %v, asking %s\n", pl.Name,
		describePlacement(p.Options()), what, d.Interval, resolver)
}

// describePlacement writes placement options as -check shows them, in the
// config's words: "ketama, hash fnv1a_64, hash_tag \"{}\"".
func describePlacement(o ring.PlacementOptions) string {
	parts := []string{"distribution " + o.Distribution}
	if o.Hash != "" {
		parts = append(parts, "hash "+o.Hash)
	}
	if o.HashTag != "" {
		parts = append(parts, fmt.Sprintf("hash_tag %q", o.HashTag))
	}
	if o.Distribution == ring.DistRing {
		parts = append(parts, fmt.Sprintf("ring {partitions: %d, replication_factor: %d, load: %v}",
			o.Ring.Partitions, o.Ring.ReplicationFactor, o.Ring.Load))
	}
	return strings.Join(parts, ", ")
}
