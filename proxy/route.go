package proxy

import (
	"slices"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// routeTable is an immutable snapshot of where keys go: every pool's
// table and the routes that choose a pool for a key. A rebuild (a health
// change, a reload) swaps in a new one; event loops read it without locks.
type routeTable struct {
	pools []*poolTable // config order
	// routes are the prefix routes in config order, the default last;
	// byFirst[c] lists the indexes of the routes whose prefix starts with
	// byte c, in order (findRoute).
	routes   []tableRoute
	byFirst  [256][]int
	prefixed bool // some route has a prefix; else every key takes routes[0]
	warmed   bool // some route has a warm-up pool (warm.go)
	// replicated: some pool keeps several copies of a key (replica.go).
	replicated bool
	// slots lists every pool's members, pool after pool (poolTable.base):
	// one number per (pool, backend) for multi-key commands.
	slots []*backend
	// copyStats[i] is slots[i]'s copy counters (replica.go).
	copyStats []*copyCounters
	// all is every configured backend, each once, in config order.
	all []*backend
}

// tableRoute is a Route with its pools resolved.
type tableRoute struct {
	prefix string
	pool   *poolTable
	warm   *poolTable // warm_from's pool, or nil
}

// route returns the route of key. The first matching route wins; the
// checks on routes (checkRoutes) make the first match the longest, so the
// routes under the key's first byte are tried in order, then the default.
func (t *routeTable) route(key []byte) *tableRoute {
	if !t.prefixed {
		return &t.routes[0]
	}
	if len(key) > 0 {
		for _, i := range t.byFirst[key[0]] {
			r := &t.routes[i]
			if len(key) >= len(r.prefix) && string(key[:len(r.prefix)]) == r.prefix {
				return r
			}
		}
	}
	return &t.routes[len(t.routes)-1]
}

// poolOf returns the table of the pool that holds key.
func (t *routeTable) poolOf(key []byte) *poolTable { return t.route(key).pool }

// liveBackends counts the backends that serve in some pool: the proxy is
// ready (/readyz) while this is above 0.
func (t *routeTable) liveBackends() int {
	n := 0
	for _, b := range t.all {
		if t.serves(b) {
			n++
		}
	}
	return n
}

// serves reports whether b is in some pool's placement and not held there
// down by the ejection cap.
func (t *routeTable) serves(b *backend) bool {
	return !b.capped.Load() && t.inRing(b)
}

// inRing reports whether b is in some pool's placement.
func (t *routeTable) inRing(b *backend) bool {
	for _, pt := range t.pools {
		if slices.Contains(pt.members, b) {
			return true
		}
	}
	return false
}

// ringMembers returns the backends in some pool's placement, each once.
func (t *routeTable) ringMembers() []*backend {
	var out []*backend
	for _, b := range t.all {
		if t.inRing(b) {
			out = append(out, b)
		}
	}
	return out
}

// placesAll reports whether every key's pool has a backend in its
// placement.
func (t *routeTable) placesAll(keys [][]byte) bool {
	for _, k := range keys {
		if t.poolOf(k).place == nil {
			return false
		}
	}
	return true
}

// anyStandIns reports whether some pool has a backend away from its
// placement, so that some keys are on stand-ins.
func (t *routeTable) anyStandIns() bool {
	for _, pt := range t.pools {
		if pt.fo.standIns {
			return true
		}
	}
	return false
}

// newRouteTable assembles pool tables and routes into a route table.
//
// A route to a pool whose backends are all joining (a pool a reload added,
// not yet proven by the health checker) is left out until they are: its
// keys stay with the route that took them before, as a new backend's keys
// stay on their stand-ins. When that route is the default, the previous
// table's default pool keeps the keys while it is still configured.
func newRouteTable(pools []*poolTable, routes []Route, all []*backend, old *routeTable) *routeTable {
	t := &routeTable{pools: pools, all: all}
	byName := make(map[string]*poolTable, len(pools))
	for _, pt := range pools {
		pt.base = len(t.slots)
		t.slots = append(t.slots, pt.members...)
		t.copyStats = append(t.copyStats, pt.copyStats...)
		t.replicated = t.replicated || pt.replicated()
		byName[pt.pool.name] = pt
	}
	for i, r := range routes {
		tr := tableRoute{prefix: r.Prefix, pool: byName[r.Pool], warm: byName[r.WarmFrom]}
		t.warmed = t.warmed || tr.warm != nil
		if tr.pool.joining {
			if r.Prefix != "" {
				continue
			}
			if prev := byName[old.defaultPool()]; prev != nil && i == len(routes)-1 {
				tr.pool = prev
			}
		}
		if r.Prefix != "" {
			t.prefixed = true
			t.byFirst[r.Prefix[0]] = append(t.byFirst[r.Prefix[0]], len(t.routes))
		}
		t.routes = append(t.routes, tr)
	}
	return t
}

// defaultPool names the pool of t's default route; "" for a nil t.
func (t *routeTable) defaultPool() string {
	if t == nil {
		return ""
	}
	return t.routes[len(t.routes)-1].pool.pool.name
}

// onHealthEvent runs on the checker's goroutine: rebuilding the ring here
// keeps the work off the request path.
func (p *Proxy) onHealthEvent(ev health.Event) {
	if ev.State == health.Up {
		// Before the backend rejoins the ring, end any reconnect backoff of
		// its connections, so its first requests wait for a dial instead of
		// failing fast.
		p.mu.Lock()
		for _, b := range p.backends {
			if b.name == ev.Name {
				b.retryNow()
			}
		}
		p.mu.Unlock()
	}
	if !p.opts.AutoEject {
		return // the ring keeps the backend; sendTo fails its keys fast
	}
	if err := p.rebuild(); err != nil {
		p.log.Error("rebuild ring after health change", zap.String("backend", ev.Name), zap.Error(err))
	}
}

// rebuild computes a new route table from the configured backends and
// their health and swaps it in.
func (p *Proxy) rebuild() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebuildLocked()
}

func (p *Proxy) rebuildLocked() error {
	old := p.table.Load()
	oldPools := map[string]*poolTable{}
	if old != nil {
		for _, pt := range old.pools {
			oldPools[pt.pool.name] = pt
		}
	}
	out, capped := p.outOfRingLocked()
	tables := make([]*poolTable, len(p.pools))
	for i, pl := range p.pools {
		t, err := p.buildPoolTable(pl, out[pl], capped[pl], oldPools[pl.name])
		if err != nil {
			return err
		}
		tables[i] = t
	}
	t := newRouteTable(tables, p.routes, append([]*backend(nil), p.backends...), old)
	attachMoves(t, old, time.Now())
	p.table.Store(t)
	for _, pt := range tables {
		if o := oldPools[pt.pool.name]; o != nil && len(o.members) != len(pt.members) {
			p.log.Info("ring rebuilt", zap.String("pool", pt.pool.name), zap.Int("ring_members", len(pt.members)),
				zap.Int("live_backends", pt.liveBackends()), zap.Int("backends", len(pt.all)))
		}
	}
	return nil
}

// enqueueAndLocate queues r for the client and returns the route of req's
// key, the table of its pool, the key's backend in it, and the key. When
// no backend of that pool is live it fails r instead and returns a nil
// table.
func (s *session) enqueueAndLocate(r *request, req *protocol.Request) (*tableRoute, *poolTable, *backend, []byte) {
	s.enqueue(r)
	key := req.Key()
	rt := s.p.table.Load().route(key)
	t := rt.pool
	if t.place == nil {
		r.fail(errNoBackends)
		return nil, nil, nil, nil
	}
	return rt, t, t.locate(key), key
}

// routeByKey queues r, encoded from req, for the client and sends it to
// the key's backend. While a backend is out of the ring or the ring changed
// recently, routeFailover adds what keeps reads fresh (failover.go). On a
// route with a warm-up pool, the key's old copy is deleted first (warm.go).
func (s *session) routeByKey(r *request, req *protocol.Request) {
	rt, t, b, key := s.enqueueAndLocate(r, req)
	if t == nil {
		return
	}
	if rt.warm != nil {
		s.fenceOldCopy(rt.warm, key, b)
	}
	if req.Op == protocol.OpSet || req.Op == protocol.OpAdd {
		r.routed = t // for repairAfterSwap
	}
	if t.replicated() {
		s.routeCopies(t, r, req, key) // replica_write.go
		return
	}
	if t.fo.active(s.now) {
		s.routeFailover(t, b, r, req, key)
		return
	}
	s.sendTo(b, r)
}

// sendTo sends r to b unless b is known to be down. With auto_eject off a
// down backend stays in the ring, and its keys fail fast here instead of
// moving to another backend.
//
// While the session waits for the delete of a warm-up route's old copy
// (warm.go), r waits behind it.
func (s *session) sendTo(b *backend, r *request) {
	if s.fence != nil {
		r.backend = b
		s.waiting = append(s.waiting, r)
		return
	}
	s.send(b, r)
}

// send is sendTo without the wait behind a fence.
func (s *session) send(b *backend, r *request) {
	if !s.p.opts.AutoEject && !s.p.health.IsUp(b.name) {
		r.backend = b
		b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	}
	b.send(s, r)
}

// sendToEveryBackend queues parent for the client and sends cmd to every
// backend in some pool's placement, one sub-request each (flush_all, stats and its backend
// groups). parent finishes when the last sub-request does, or at once when
// no backend is live, with noLive as its error if that is not nil.
func (s *session) sendToEveryBackend(parent *request, cmd []byte, noLive error) {
	for _, b := range s.p.table.Load().ringMembers() {
		sub := newRequest(s, parent.op)
		sub.parent = parent
		sub.backend = b
		sub.out = append(sub.out, cmd...)
		parent.subs = append(parent.subs, sub)
	}
	s.enqueue(parent)
	if len(parent.subs) == 0 {
		parent.err = noLive
		parent.finish()
		return
	}
	parent.pending.Store(int32(len(parent.subs)))
	for _, sub := range parent.subs {
		s.sendTo(sub.backend, sub)
	}
}
