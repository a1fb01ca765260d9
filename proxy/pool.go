package proxy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mcproxy/mcproxy/ring"
)

// DefaultPoolName is the name of the pool made of Options.Backends (the
// config file's top-level backends:), and of the only pool when no pools
// are named.
const DefaultPoolName = "default"

// Pool is a named set of backends that share keys by one placement.
// A server may be listed in several pools (a migration in place rehashes
// the same servers); it is one backend to the proxy, with one health state
// and one set of connections, and must have the same name in every pool
// that lists it. Its weight is the pool's own.
type Pool struct {
	Name     string
	Backends []Backend
	// Placement chooses how keys map onto Backends: the distribution, its
	// key hash and hash tag, and the ring's tuning for DistRing.
	Placement ring.PlacementOptions
	// Replicas is the number of backends that hold each key
	// (MinReplicas..MaxReplicas; a pool of fewer backends keeps a copy on
	// each); 0 means
	// DefaultReplicas. replica.go says how copies are read and written.
	Replicas int
}

// Route sends the keys that start with Prefix to Pool. Routes are tried in
// order and the first match wins; a route with an empty prefix matches
// every key and is the default route.
type Route struct {
	Prefix string
	Pool   string
	// WarmFrom names a pool that held these keys before: a read that
	// misses on Pool is retried there, a hit is copied into Pool, and
	// writes and deletes also delete the old copy (warm.go). Empty: none.
	WarmFrom string
}

// poolsOf returns the pools and routes that Pools, Routes, Backends and
// Ring describe: with no Pools, one pool named DefaultPoolName of Backends
// placed by the ring; with no Routes, a default route to the only pool.
//
// replicas is the default pool's Replicas (Settings.Replicas).
func poolsOf(pools []Pool, routes []Route, backends []Backend, rc ring.Config, replicas int) ([]Pool, []Route) {
	if len(pools) == 0 && len(backends) > 0 {
		pools = []Pool{{Name: DefaultPoolName, Backends: backends, Replicas: replicas,
			Placement: ring.PlacementOptions{Distribution: ring.DistRing, Ring: rc}}}
	}
	if len(routes) == 0 && len(pools) == 1 {
		routes = []Route{{Pool: pools[0].Name}}
	}
	return pools, routes
}

// checkPools checks pools and routes before anything is built from them:
// at least one pool, distinct pool names, each pool's backends (checkBackends)
// and placement, one name per server across pools, routes that name
// existing pools, and a default route.
//
// It returns each pool's placement options with their defaults filled in.
func checkPools(pools []Pool, routes []Route) ([]ring.PlacementOptions, error) {
	if len(pools) == 0 {
		return nil, errors.New("no backends")
	}
	opts := make([]ring.PlacementOptions, len(pools))
	names := make(map[string]bool, len(pools))
	serverName := map[string]string{} // address -> name
	serverAddr := map[string]string{} // name -> address
	zoneOf := map[string]string{}     // name -> zone
	for i, pl := range pools {
		if pl.Name == "" {
			return nil, errors.New("a pool has no name")
		}
		if names[pl.Name] {
			return nil, fmt.Errorf("pool %s listed twice", pl.Name)
		}
		names[pl.Name] = true
		if len(pl.Backends) == 0 {
			return nil, fmt.Errorf("pool %s: no backends", pl.Name)
		}
		if err := checkBackends(pl.Backends); err != nil {
			return nil, fmt.Errorf("pool %s: %w", pl.Name, err)
		}
		if err := checkReplicas(pl); err != nil {
			return nil, err
		}
		if err := checkZones(pl, zoneOf); err != nil {
			return nil, err
		}
		// Building the full placement checks names, weights and options,
		// and that every subset (after ejections) will build too.
		pc, err := ring.NewPlacement(placementServers(pl.Backends), pl.Placement)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", pl.Name, err)
		}
		opts[i] = pc.Options()
		for _, b := range pl.Backends {
			if n, ok := serverName[b.Addr]; ok && n != b.name() {
				return nil, fmt.Errorf("pool %s: server %s is named %s in another pool; a server listed in several pools has one name", pl.Name, b.Addr, n)
			}
			if a, ok := serverAddr[b.name()]; ok && a != b.Addr {
				return nil, fmt.Errorf("pool %s: backend name %s is %s in another pool; one name is one server", pl.Name, b.name(), a)
			}
			serverName[b.Addr], serverAddr[b.name()] = b.name(), b.Addr
		}
	}
	return opts, checkRoutes(routes, names)
}

// serversOf lists the backends of every pool, each server once (by name),
// in the order they first appear; weights are left to the pools.
func serversOf(pools []Pool) []Backend {
	seen := map[string]bool{}
	var out []Backend
	for _, pl := range pools {
		for _, b := range pl.Backends {
			if !seen[b.name()] {
				seen[b.name()] = true
				out = append(out, Backend{Name: b.Name, Addr: b.Addr})
			}
		}
	}
	return out
}

// newPools makes the proxy's pools from checked ones, with the backends
// of byName (every server of every pool) and the counters of the pools of
// the same name in prev (a reload keeps them).
func newPools(pools []Pool, opts []ring.PlacementOptions, byName map[string]*backend, prev []*pool) []*pool {
	counters := map[string]*poolCounters{}
	for _, pl := range prev {
		counters[pl.name] = pl.counters
	}
	out := make([]*pool, len(pools))
	for i, pl := range pools {
		np := &pool{name: pl.Name, opts: opts[i], counters: counters[pl.Name], replicas: max(pl.Replicas, DefaultReplicas)}
		if np.counters == nil {
			np.counters = &poolCounters{}
		}
		for _, b := range pl.Backends {
			np.backends = append(np.backends, byName[b.name()])
			np.weights = append(np.weights, max(b.Weight, 1))
			np.zones = append(np.zones, b.Zone)
		}
		out[i] = np
	}
	return out
}

// checkRoutes checks that every route names a pool, that a warm-up pool is
// another pool, that every route can match some key (no earlier route's
// prefix is a prefix of its own) and that the last route is the default.
func checkRoutes(routes []Route, pools map[string]bool) error {
	for i, r := range routes {
		for j, earlier := range routes[:i] {
			if strings.HasPrefix(r.Prefix, earlier.Prefix) {
				return fmt.Errorf("route %d (%s) never matches: route %d (%s) comes first and takes its keys",
					i, describeRoute(r), j, describeRoute(earlier))
			}
		}
		if !pools[r.Pool] {
			return fmt.Errorf("route %d: unknown pool %q", i, r.Pool)
		}
		if r.WarmFrom != "" && !pools[r.WarmFrom] {
			return fmt.Errorf("route %d: warm_from: unknown pool %q", i, r.WarmFrom)
		}
		if r.WarmFrom == r.Pool {
			return fmt.Errorf("route %d: warm_from names the route's own pool %q", i, r.Pool)
		}

	}
	if len(routes) == 0 || routes[len(routes)-1].Prefix != "" {
		return errors.New("no default route: the last route must have no prefix, so that every key has a pool")
	}
	return nil
}

// placementServers lists backends as ring.NewPlacement takes them.
func placementServers(bs []Backend) []ring.Server {
	s := make([]ring.Server, len(bs))
	for i, b := range bs {
		s[i] = ring.Server{Name: b.Name, Addr: b.Addr, Weight: b.Weight}
	}
	return s
}

// describeRoute is a route as logs and errors show it.
func describeRoute(r Route) string {
	var sb strings.Builder
	if r.Prefix == "" {
		sb.WriteString("(default)")
	} else {
		fmt.Fprintf(&sb, "prefix %q", r.Prefix)
	}
	sb.WriteString(" -> " + r.Pool)
	if r.WarmFrom != "" {
		sb.WriteString(" (warm from " + r.WarmFrom + ")")
	}
	return sb.String()
}
