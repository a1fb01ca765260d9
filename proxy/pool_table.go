package proxy

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/mcproxy/mcproxy/ring"
)

// pool is one configured pool as the proxy keeps it between reloads: its
// backends and their weights in the pool, its placement options and its
// counters. It is owned by Proxy.mu; the data path reads poolTables, the
// immutable snapshots rebuilt from it.
type pool struct {
	name     string
	backends []*backend // config order
	weights  []int      // weights[i] is backends[i]'s weight in this pool
	opts     ring.PlacementOptions
	counters *poolCounters // kept across reloads while the name stands
	// replicas is how many backends hold each key (replica.go); zones[i]
	// is backends[i]'s zone, "" for none.
	replicas int
	zones    []string
}

// poolCounters are the counters of one pool, which `stats pools` and the
// metrics with a pool label report. Written by any event loop.
type poolCounters struct {
	failoverCappedWrites, failoverInvalidations atomic.Uint64
	warmHits, warmCopies, warmCopyErrors        atomic.Uint64
	warmDeletes                                 atomic.Uint64
	copyCounters                                // replica.go
}

// poolTable is an immutable snapshot of where one pool's keys go: its
// placement over the members now in it, and what keeps reads fresh while
// a member is away (fo). Built under Proxy.mu by buildPoolTable and read
// by every event loop without locks.
type poolTable struct {
	pool    *pool
	place   ring.Placement // nil when no backend of the pool is in it
	members []*backend     // members[i] is placement index i
	weights []int          // weights[i] is members[i]'s weight
	zones   []string       // zones[i] is members[i]'s zone
	// copyStats[i] counts the copies read from and written to members[i]
	// (replica.go), shared by every pool that lists the backend.
	copyStats []*copyCounters
	// zone is the proxy's zone when some member is in it: reads go to the
	// copy there first. "" otherwise.
	zone string
	// src is the placement as choosing copies takes it (replica.go).
	src  copySource
	all  []*backend // the pool's configured backends, live or not
	opts ring.PlacementOptions
	// capped counts the members the ejection cap holds in the placement
	// while down: they fail fast.
	capped int
	// joining: no backend is in the placement and none has failed: they
	// are all new (a pool added by a reload) and not yet proven.
	joining bool
	fo      failoverRoutes
	// base is the index of members[0] in routeTable.slots, so that a
	// multi-key command names a key's backend by one number across pools.
	base int
}

// locate returns the member that holds key; t.place must not be nil.
func (t *poolTable) locate(key []byte) *backend { return t.members[t.place.Locate(key)] }

// liveBackends counts the members that serve: a member the ejection cap
// holds in the placement is down and fails fast.
func (t *poolTable) liveBackends() int { return len(t.members) - t.capped }

// buildPoolTable builds pl's table without the backends in out, and the
// failover part from old, pl's previous table (nil at start or for a new
// pool). It runs under p.mu.
func (p *Proxy) buildPoolTable(pl *pool, out, capped map[*backend]bool, old *poolTable) (*poolTable, error) {
	t := &poolTable{pool: pl, all: pl.backends, opts: pl.opts}
	var servers []ring.Server
	for i, b := range pl.backends {
		if out[b] {
			continue
		}
		t.members = append(t.members, b)
		t.weights = append(t.weights, pl.weights[i])
		t.zones = append(t.zones, pl.zones[i])
		t.copyStats = append(t.copyStats, p.copyStatsLocked(b.name))
		if pl.zones[i] != "" && pl.zones[i] == p.opts.Zone {
			t.zone = p.opts.Zone
		}
		servers = append(servers, placementServer(b, pl.weights[i]))
		if capped[b] {
			t.capped++
		}
	}
	t.joining = len(servers) == 0 && p.allJoiningLocked(pl)
	if len(servers) > 0 {
		pc, err := ring.NewPlacement(servers, pl.opts)
		if err != nil {
			return nil, fmt.Errorf("pool %s: place %d backends: %w", pl.name, len(servers), err)
		}
		t.place = pc
	}
	t.src = copySource{place: t.place, members: t.members, zones: t.zones, replicas: pl.replicas, zoned: anyZone(t.zones)}
	p.attachFailover(t, old)
	return t, nil
}

// allJoiningLocked reports whether every backend of pl is joining: added
// by a reload and not yet proven by the health checker.
func (p *Proxy) allJoiningLocked(pl *pool) bool {
	joining := map[string]bool{}
	for _, st := range p.health.Snapshot() {
		joining[st.Name] = st.Joining
	}
	for _, b := range pl.backends {
		if !joining[b.name] {
			return false
		}
	}
	return true
}

// placementServer is a backend as its pool's placement sees it: by its
// name when it has one of its own (the config's name:), else by address,
// which is how each distribution names a server its clients list by
// address.
func placementServer(b *backend, weight int) ring.Server {
	s := ring.Server{Addr: b.addr, Weight: weight}
	if b.name != b.addr {
		s.Name = b.name
	}
	return s
}

// samePlacement reports whether a and b put every key on the same backend.
func samePlacement(a, b *poolTable) bool {
	if (a.place == nil) != (b.place == nil) {
		return false
	}
	return a.place == nil || a.opts == b.opts && slices.Equal(a.members, b.members) && slices.Equal(a.weights, b.weights) &&
		a.pool.replicas == b.pool.replicas && slices.Equal(a.zones, b.zones)
}
