package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// ReconfigureResult says what a reconfiguration changed.
type ReconfigureResult struct {
	Added, Removed, Reweighted []string // backend addresses
	RingChanged                bool     // partitions, replication factor or load
	Generation                 uint64   // the config generation now in force
}

// Changed reports whether anything changed.
func (r ReconfigureResult) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Reweighted) > 0 || r.RingChanged
}

// Reconfigure applies a new backend list and ring configuration to the
// running proxy, without dropping a client or failing a command:
//
//   - backends still listed keep their connections and health state;
//   - new backends get a connection pool and health checking, and join
//     the ring once the checker has seen them answer (at once when
//     auto_eject is off);
//   - removed backends leave the ring at once; their connections stay open
//     until the commands already sent to them have been answered, then
//     close;
//   - weight and ring changes take effect with the new ring.
//
// Everything is checked before anything changes: on error the running
// configuration is untouched. A call that changes nothing still counts as
// a new generation, since the operator's file did change.
func (p *Proxy) Reconfigure(backends []Backend, rc ring.Config) (ReconfigureResult, error) {
	var res ReconfigureResult
	if len(backends) == 0 {
		return res, errors.New("reconfigure: no backends")
	}
	rc, err := rc.WithDefaults()
	if err != nil {
		return res, fmt.Errorf("reconfigure: ring: %w", err)
	}
	// Building the full ring checks addresses, duplicates and weights, and
	// that every subset (after ejections) will build too.
	if _, err := ring.New(ringMembers(backends), rc); err != nil {
		return res, fmt.Errorf("reconfigure: %w", err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return res, errors.New("reconfigure: proxy is shut down")
	}
	current := make(map[string]*backend, len(p.backends))
	for _, b := range p.backends {
		current[b.addr] = b
	}
	next := make([]*backend, 0, len(backends))
	kept := make(map[string]bool, len(backends))
	for _, nb := range backends {
		w := int64(max(nb.Weight, 1))
		b, ok := current[nb.Addr]
		if !ok {
			b = newBackend(p, nb.Addr, int(w))
			res.Added = append(res.Added, nb.Addr)
		} else if b.weight.Swap(w) != w {
			res.Reweighted = append(res.Reweighted, nb.Addr)
		}
		kept[nb.Addr] = true
		next = append(next, b)
	}
	var removed []*backend
	for _, b := range p.backends {
		if !kept[b.addr] {
			removed = append(removed, b)
			res.Removed = append(res.Removed, b.addr)
		}
	}
	res.RingChanged = rc != p.ringCfg

	p.backends, p.ringCfg = next, rc
	if p.health != nil {
		addrs := make([]string, len(next))
		for i, b := range next {
			addrs[i] = b.addr
		}
		if p.opts.AutoEject {
			// New backends join only once probes vouch for them (and,
			// with flush_on_readd, once flushed): a mistyped address
			// never takes keys, and a backend that was in the pool
			// before never serves what it kept from then.
			p.health.SetBackendsPending(addrs)
		} else {
			p.health.SetBackends(addrs)
		}
	}
	if err := p.rebuildLocked(); err != nil {
		// ring.New accepted the full list above, so a subset cannot fail;
		// keep serving on the previous table if it somehow does.
		p.log.Error("rebuild ring after reconfigure", zap.Error(err))
	}
	for _, b := range removed {
		p.retiring.Add(1)
		go func(b *backend) {
			defer p.retiring.Done()
			b.retire(p.stopRetiring)
		}(b)
	}
	p.generation++
	p.lastReload = time.Now()
	res.Generation = p.generation
	return res, nil
}

// SetHealthConfig changes the health checker's interval, timeout and
// limits on the running proxy; backends keep their state. The re-add hook
// (flush_on_readd) and auto_eject stay as they were set at start.
func (p *Proxy) SetHealthConfig(hc health.Config) {
	if p.health == nil {
		return
	}
	hc.BeforeUp = p.health.Config().BeforeUp
	p.health.SetConfig(hc)
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
