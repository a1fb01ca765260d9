package proxy

import (
	"errors"
	"fmt"
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
	bs := make([]Backend, len(p.backends))
	for i, b := range p.backends {
		bs[i] = Backend{Addr: b.addr, Weight: int(b.weight.Load())}
		if b.name != b.addr {
			bs[i].Name = b.name
		}
	}
	hc := p.health.Config()
	hc.BeforeUp = nil
	return Settings{Backends: bs, Ring: p.ringCfg, Health: hc, MaxEjected: p.maxEjected}
}

// ReconfigureResult says what a reconfiguration changed.
type ReconfigureResult struct {
	Added, Removed, Reweighted []string // backend names
	// Readdressed: same name, a new spelling of the same server (say
	// localhost for 127.0.0.1): health state, ring place and data kept.
	Readdressed []string
	// Replaced: same name, a different server: it takes the name's ring
	// place once it has proved itself, like an added backend.
	Replaced          []string
	RingChanged       bool   // partitions, replication factor or load
	HealthChanged     bool   // the checker's tuning
	MaxEjectedChanged bool   // the ejection cap
	Generation        uint64 // the config generation now in force
}

// Changed reports whether anything changed.
func (r ReconfigureResult) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Reweighted)+len(r.Readdressed)+len(r.Replaced) > 0 ||
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
	rc, err := checkSettings(s)
	if err != nil {
		return res, err
	}
	same := p.sameServers(s.Backends)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return res, errors.New("reconfigure: proxy is shut down")
	}
	m := p.matchBackendsLocked(s.Backends, same, &res)
	res.RingChanged = rc != p.ringCfg
	res.MaxEjectedChanged = s.MaxEjected.String() != p.maxEjected.String()
	p.applyLocked(s, rc, m, &res)
	return res, nil
}

// checkSettings checks new settings before anything changes, and returns
// their ring config with defaults applied.
func checkSettings(s Settings) (ring.Config, error) {
	backends := s.Backends
	if len(backends) == 0 {
		return ring.Config{}, errors.New("reconfigure: no backends")
	}
	if err := checkBackends(backends); err != nil {
		return ring.Config{}, fmt.Errorf("reconfigure: %w", err)
	}
	rc, err := s.Ring.WithDefaults()
	if err != nil {
		return ring.Config{}, fmt.Errorf("reconfigure: ring: %w", err)
	}
	// Building the full ring checks names and weights, and that every
	// subset (after ejections) will build too.
	if _, err := ring.New(ringMembers(backends), rc); err != nil {
		return ring.Config{}, fmt.Errorf("reconfigure: %w", err)
	}
	return rc, nil
}

// backendMatch is the new backend list matched with the running one
// (matchBackendsLocked).
type backendMatch struct {
	next    []*backend // the new list, in config order
	removed []*backend // running backends not in next: to retire
	fresh   []string   // names whose health state starts anew
}

// matchBackendsLocked matches the new backend list with the running one
// by name: a backend kept as it was is reused (its weight updated), a new
// name or address gets a new backend, which inherits the counters of the
// one it replaces when same says both addresses are one server. It fills
// res's lists of names. Caller holds p.mu.
func (p *Proxy) matchBackendsLocked(backends []Backend, same map[string]string, res *ReconfigureResult) backendMatch {
	current := make(map[string]*backend, len(p.backends))
	for _, b := range p.backends {
		current[b.name] = b
	}
	m := backendMatch{next: make([]*backend, 0, len(backends))}
	kept := make(map[*backend]bool, len(backends))
	for _, nb := range backends {
		name, w := nb.name(), int64(max(nb.Weight, 1))
		b, ok := current[name]
		switch {
		case !ok:
			b = newBackend(p, name, nb.Addr, int(w))
			res.Added = append(res.Added, name)
		case b.addr != nb.Addr:
			old := b
			b = newBackend(p, name, nb.Addr, int(w))
			if same[name] == old.addr {
				b.inherit(old)
				res.Readdressed = append(res.Readdressed, name)
			} else {
				m.fresh = append(m.fresh, name)
				res.Replaced = append(res.Replaced, name)
			}
			if old.weight.Load() != w {
				res.Reweighted = append(res.Reweighted, name)
			}
		default:
			kept[b] = true
			if b.weight.Swap(w) != w {
				res.Reweighted = append(res.Reweighted, name)
			}
		}
		m.next = append(m.next, b)
	}
	for _, b := range p.backends {
		if kept[b] {
			continue
		}
		b.retired.Store(true)
		m.removed = append(m.removed, b)
		if n := b.name; !containsName(backends, n) {
			res.Removed = append(res.Removed, n)
		}
	}
	return m
}

// applyLocked puts checked and matched settings in force: the health
// checker's tuning and backends, the ring, the retirement of removed
// backends, and a new config generation. Caller holds p.mu.
func (p *Proxy) applyLocked(s Settings, rc ring.Config, m backendMatch, res *ReconfigureResult) {
	// The tuning goes first, so that new backends start with it.
	hc := s.Health
	hc.BeforeUp = p.health.Config().BeforeUp // flush_on_readd is start-only
	res.HealthChanged = p.health.SetConfig(hc)
	if res.MaxEjectedChanged {
		p.log.Info("ejection cap changed", zap.String("max_ejected", s.MaxEjected.String()),
			zap.Int("backends", s.MaxEjected.Limit(len(m.next))))
	}
	p.backends, p.ringCfg, p.maxEjected = m.next, rc, s.MaxEjected
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
