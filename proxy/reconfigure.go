package proxy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/internal/resolve"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// Settings are what Reconfigure changes on a running proxy: the backend
// list, the ring, the health checker's tuning and the ejection cap. Options
// holds the same fields for the start; everything else in Options applies
// at start only.
type Settings struct {
	Backends []Backend
	Ring     ring.Config
	// Replicas is the default pool's Pool.Replicas.
	Replicas int
	Pools    []Pool
	Routes   []Route
	// Health is the checker's tuning: interval, timeout, failure and
	// success limits, flap hold-down. BeforeUp (flush_on_readd) and
	// AlwaysUp are fixed at start; Reconfigure ignores them.
	Health     health.Config
	MaxEjected EjectionCap
}

// Settings returns the settings in force, defaults applied, for a caller
// that changes one part and passes the rest back to Reconfigure. Health's
// BeforeUp is left out.
func (p *Proxy) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	hc := p.health.Config()
	hc.BeforeUp = nil
	s := Settings{Ring: p.ringCfg, Health: hc, MaxEjected: p.maxEjected}
	pools := make([]Pool, len(p.pools))
	for i, pl := range p.pools {
		pools[i] = Pool{Name: pl.name, Placement: pl.opts, Replicas: pl.replicas}
		for j, b := range pl.backends {
			nb := Backend{Addr: b.addr, Weight: pl.weights[j], Zone: pl.zones[j]}
			if b.name != b.addr {
				nb.Name = b.name
			}
			pools[i].Backends = append(pools[i].Backends, nb)
		}
	}
	if p.named {
		s.Pools, s.Routes = pools, append([]Route(nil), p.routes...)
	} else {
		s.Backends, s.Replicas = pools[0].Backends, pools[0].Replicas
	}
	return s
}

// ReconfigureResult says what a reconfiguration changed.
type ReconfigureResult struct {
	Added, Removed, Reweighted []string // backend names
	// Readdressed: same name, a new spelling of the same server (say
	// localhost for 127.0.0.1): health state, ring place and data kept.
	Readdressed []string
	// Replaced: same name, a different server: it takes the name's ring
	// place once it has proved itself, like an added backend.
	Replaced []string
	// PoolsAdded, PoolsRemoved: pool names; PlacementChanged: pools whose
	// distribution, hash, hash tag or ring tuning changed.
	PoolsAdded, PoolsRemoved, PlacementChanged []string
	RoutesChanged                              bool   // the routes, their order or warm-up pools
	RingChanged                                bool   // partitions, replication factor or load
	HealthChanged                              bool   // the checker's tuning
	MaxEjectedChanged                          bool   // the ejection cap
	Generation                                 uint64 // the config generation now in force
}

// Changed reports whether anything changed.
func (r ReconfigureResult) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Reweighted)+len(r.Readdressed)+len(r.Replaced) > 0 ||
		len(r.PoolsAdded)+len(r.PoolsRemoved)+len(r.PlacementChanged) > 0 || r.RoutesChanged ||
		r.RingChanged || r.HealthChanged || r.MaxEjectedChanged
}

// Reconfigure applies new settings to the running proxy, without dropping
// a client or failing a command. Backends are matched by name (by default
// their address):
//
//   - backends still listed keep their connections and health state;
//   - a backend listed under its name at another spelling of the same
//     server keeps its health state and ring place and is not flushed;
//     its connections are redialed to the new spelling;
//   - new backends, and names moved to a different server, get a
//     connection pool and health checking, and take their keys once the
//     checker has seen them answer (and, with flush_on_readd, flushed
//     them); until then those keys stay on stand-ins (at once when
//     auto_eject is off);
//   - removed backends leave the ring at once; their connections stay open
//     until the commands already sent to them have been answered, then
//     close;
//   - weight and ring changes take effect with the new ring;
//   - the health checker uses its new tuning from its next probe, every
//     backend keeping its state;
//   - the ring is rebuilt under the new ejection cap.
//
// Everything is checked before anything changes: on error the running
// configuration is untouched. Then all of it is applied under the proxy's
// lock, so the new generation (stats config_generation) is published only
// once everything is in force. A call that changes nothing still counts as
// a new generation, since the operator's file did change.
func (p *Proxy) Reconfigure(s Settings) (ReconfigureResult, error) {
	var res ReconfigureResult
	c, err := checkSettings(s)
	if err != nil {
		return res, fmt.Errorf("reconfigure: %w", err)
	}
	same := p.sameServers(c.servers)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return res, errors.New("reconfigure: proxy is shut down")
	}
	p.setBackendTLS(c.pools) // before new backends dial
	m := p.matchBackendsLocked(c.servers, same, &res)
	res.RingChanged = c.ring != p.ringCfg
	res.MaxEjectedChanged = s.MaxEjected.String() != p.maxEjected.String()
	next := newPools(c.pools, c.placements, m.byName, p.pools)
	p.comparePoolsLocked(next, c.routes, &res)
	p.named = len(s.Pools) > 0
	p.applyLocked(s, c, next, m, &res)
	return res, nil
}

// checkedSettings are Settings that passed checkSettings, in the shape the
// proxy keeps them.
type checkedSettings struct {
	pools      []Pool
	routes     []Route
	placements []ring.PlacementOptions // of pools, defaults filled in
	servers    []Backend               // every pool's servers, each once
	ring       ring.Config             // Settings.Ring, defaults filled in
}

// checkSettings checks new settings before anything changes.
func checkSettings(s Settings) (checkedSettings, error) {
	var c checkedSettings
	rc, err := s.Ring.WithDefaults()
	if err != nil {
		return c, fmt.Errorf("ring: %w", err)
	}
	c.ring = rc
	c.pools, c.routes = poolsOf(s.Pools, s.Routes, s.Backends, s.Ring, s.Replicas)
	if c.placements, err = checkPools(c.pools, c.routes); err != nil {
		return c, err
	}
	c.servers = serversOf(c.pools)
	return c, nil
}

// comparePoolsLocked fills res with what changed between the running pools
// and routes and next: pools added and removed, placements changed,
// weights changed, routes changed. Caller holds p.mu.
func (p *Proxy) comparePoolsLocked(next []*pool, routes []Route, res *ReconfigureResult) {
	prev := map[string]*pool{}
	for _, pl := range p.pools {
		prev[pl.name] = pl
	}
	reweighted := map[string]bool{}
	for _, pl := range next {
		old, ok := prev[pl.name]
		if !ok {
			res.PoolsAdded = append(res.PoolsAdded, pl.name)
			continue
		}
		delete(prev, pl.name)
		if old.opts != pl.opts || old.replicas != pl.replicas || !slices.Equal(old.zones, pl.zones) {
			res.PlacementChanged = append(res.PlacementChanged, pl.name)
		}
		oldWeight := map[string]int{}
		for i, b := range old.backends {
			oldWeight[b.name] = old.weights[i]
		}
		for i, b := range pl.backends {
			if w, ok := oldWeight[b.name]; ok && w != pl.weights[i] && !reweighted[b.name] {
				reweighted[b.name] = true
				res.Reweighted = append(res.Reweighted, b.name)
			}
		}
	}
	for _, pl := range p.pools {
		if _, gone := prev[pl.name]; gone {
			res.PoolsRemoved = append(res.PoolsRemoved, pl.name)
		}
	}
	res.RoutesChanged = !slices.Equal(p.routes, routes)
}

// backendMatch is the new server list matched with the running one
// (matchBackendsLocked).
type backendMatch struct {
	next    []*backend          // the new list, in config order
	byName  map[string]*backend // next by name
	removed []*backend          // running backends not in next: to retire
	fresh   []string            // names whose health state starts anew
}

// matchBackendsLocked matches the new server list (every pool's, each
// server once) with the running one by name: a backend kept as it was is
// reused, a new name or address gets a new backend, which inherits the
// counters of the one it replaces when same says both addresses are one
// server. It fills res's lists of names. Caller holds p.mu.
func (p *Proxy) matchBackendsLocked(servers []Backend, same map[string]string, res *ReconfigureResult) backendMatch {
	current := make(map[string]*backend, len(p.backends))
	for _, b := range p.backends {
		current[b.name] = b
	}
	m := backendMatch{next: make([]*backend, 0, len(servers)), byName: make(map[string]*backend, len(servers))}
	kept := make(map[*backend]bool, len(servers))
	for _, nb := range servers {
		name := nb.name()
		b, ok := current[name]
		switch {
		case !ok:
			b = newBackend(p, name, nb.Addr)
			res.Added = append(res.Added, name)
		case b.addr != nb.Addr:
			old := b
			b = newBackend(p, name, nb.Addr)
			if same[name] == old.addr {
				b.inherit(old)
				res.Readdressed = append(res.Readdressed, name)
			} else {
				m.fresh = append(m.fresh, name)
				res.Replaced = append(res.Replaced, name)
			}
		default:
			kept[b] = true
		}
		m.next = append(m.next, b)
		m.byName[name] = b
	}
	for _, b := range p.backends {
		if kept[b] {
			continue
		}
		b.retired.Store(true)
		m.removed = append(m.removed, b)
		if n := b.name; !containsName(servers, n) {
			res.Removed = append(res.Removed, n)
		}
	}
	return m
}

// applyLocked puts checked and matched settings in force: the health
// checker's tuning and backends, the ring, the retirement of removed
// backends, and a new config generation. Caller holds p.mu.
func (p *Proxy) applyLocked(s Settings, c checkedSettings, pools []*pool, m backendMatch, res *ReconfigureResult) {
	// The tuning goes first, so that new backends start with it.
	hc := s.Health
	hc.BeforeUp = p.health.Config().BeforeUp // flush_on_readd is start-only
	res.HealthChanged = p.health.SetConfig(hc)
	if res.MaxEjectedChanged {
		p.log.Info("ejection cap changed", zap.String("max_ejected", s.MaxEjected.String()),
			zap.Int("backends", s.MaxEjected.Limit(len(m.next))))
	}
	p.backends, p.pools, p.routes, p.ringCfg, p.maxEjected = m.next, pools, c.routes, c.ring, s.MaxEjected
	for _, name := range m.fresh {
		p.health.Forget(name)
	}
	if p.opts.AutoEject {
		// New backends join only once probes vouch for them (and,
		// with flush_on_readd, once flushed): a mistyped address
		// never takes keys, and a backend that was in the pool
		// before never serves what it kept from then.
		p.health.SetBackendsPending(healthTargets(m.next))
	} else {
		p.health.SetBackends(healthTargets(m.next))
	}
	if err := p.rebuildLocked(); err != nil {
		// ring.New accepted the full list above, so a subset cannot fail;
		// keep serving on the previous table if it somehow does.
		p.log.Error("rebuild ring after reconfigure", zap.Error(err))
	}
	for _, b := range m.removed {
		p.retiring.Add(1)
		go func(b *backend) {
			defer p.retiring.Done()
			b.retire(p.stopRetiring)
		}(b)
	}
	p.generation++
	p.lastReload = time.Now()
	res.Generation = p.generation
}

// sameServers finds the backends that keep their name but change the
// spelling of their address, and resolves old and new spellings: the
// result maps such a name to its old address when both resolve to the
// same server. DNS is asked outside p.mu (a slow lookup must not hold up
// accepting clients or an ejection), so the caller checks that the old
// address is still the one in force.
func (p *Proxy) sameServers(backends []Backend) map[string]string {
	p.mu.Lock()
	current := make(map[string]string, len(p.backends))
	for _, b := range p.backends {
		current[b.name] = b.addr
	}
	p.mu.Unlock()
	var names, addrs []string // addrs[2i] is names[i]'s old address, addrs[2i+1] its new one
	for _, nb := range backends {
		if old, ok := current[nb.name()]; ok && old != nb.Addr {
			names = append(names, nb.name())
			addrs = append(addrs, old, nb.Addr)
		}
	}
	out := map[string]string{}
	if len(names) == 0 {
		return out
	}
	servers, errs := resolve.Lookup(addrs)
	for i, name := range names {
		if err := errors.Join(errs[2*i], errs[2*i+1]); err != nil {
			p.log.Warn("backend address changed and cannot be compared; treating it as a new server",
				zap.String("backend", name), zap.String("from", addrs[2*i]), zap.String("to", addrs[2*i+1]), zap.Error(err))
			continue
		}
		if resolve.Same(servers[2*i], servers[2*i+1]) {
			out[name] = addrs[2*i]
		}
	}
	return out
}

func containsName(bs []Backend, name string) bool {
	for _, b := range bs {
		if b.name() == name {
			return true
		}
	}
	return false
}

// ConfigGeneration returns the config generation in force (1 at start, one
// more per Reconfigure) and when it was applied.
func (p *Proxy) ConfigGeneration() (uint64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.generation, p.lastReload
}

// CountReloadFailure counts a config reload that was refused, for stats
// and metrics. The loader calls it; the proxy never sees the bad file.
func (p *Proxy) CountReloadFailure() { p.stats.reloadFailures.Add(1) }
