package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/discover"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// discoverFirstWait bounds how long mcproxy waits at start for the first
// answer of every pool found in DNS: the proxy starts only once each pool
// has backends (the proxy refuses an empty pool), and a start that cannot
// get them fails, naming the pools and their lookups, rather than serve
// keys nowhere. In Kubernetes the pod restarts (with back-off) until the
// memcached pods are ready.
const discoverFirstWait = 30 * time.Second

// discovery runs a discover.Watcher for each pool of the start-up config
// that has a discover section, and keeps the backend list each has found.
// The Watchers call in on their own goroutines; lists is guarded by mu.
// A change is signalled on changed, which serve's loop (runUntilStop)
// turns into a Reconfigure through the reloader, the one place where the
// config and the found lists are composed (settingsFrom).
type discovery struct {
	watchers map[string]*discover.Watcher // pool name -> its Watcher; fixed at start
	order    []string                     // pool names in file order
	changed  chan struct{}                // cap 1: a list changed since it was last taken
	first    chan struct{}                // closed once every pool has a list
	cap      atomic.Pointer[proxy.EjectionCap]

	mu    sync.Mutex
	lists map[string][]proxy.Backend
}

// startDiscovery starts a Watcher for each discovered pool of cfg (none
// when cfg has none: a nil-safe empty discovery).
func startDiscovery(cfg config.Config, log *zap.Logger) (*discovery, error) {
	d := &discovery{watchers: map[string]*discover.Watcher{}, changed: make(chan struct{}, 1),
		first: make(chan struct{}), lists: map[string][]proxy.Backend{}}
	d.setCap(settingsCap(cfg))
	for _, pl := range cfg.Pools {
		if !pl.Discover.Set() {
			continue
		}
		name := pl.Name
		w, err := discover.New(discover.Options{
			Spec:      pl.Discover.Spec(),
			OnChange:  func(bs []discover.Backend) { d.found(name, bs) },
			MaxRemove: func(total int) int { return d.cap.Load().Limit(total) },
			Logger:    log.With(zap.String("pool", name)),
		})
		if err != nil { // validated at load; not reached
			d.stop()
			return nil, fmt.Errorf("pools.%s.discover: %w", name, err)
		}
		d.watchers[name] = w
		d.order = append(d.order, name)
	}
	if len(d.order) == 0 {
		close(d.first)
	}
	for _, name := range d.order {
		d.watchers[name].Start()
	}
	return d, nil
}

// setCap sets health.max_ejected, which bounds how many backends DNS may
// take out of a pool over a streak of removals (the Watchers' MaxRemove).
func (d *discovery) setCap(c proxy.EjectionCap) {
	if d != nil {
		d.cap.Store(&c)
	}
}

// resetRemovals ends every pool's streak of removals (an operator's
// reload): the cap counts afresh from the lists as they are, so a pool
// scaled down by more than health.max_ejected shrinks after a reload.
func (d *discovery) resetRemovals() {
	if d == nil {
		return
	}
	for _, w := range d.watchers {
		w.ResetRemovals()
	}
}

// changes is the channel a change of a list is signalled on; nil (never
// ready) for a nil discovery.
func (d *discovery) changes() <-chan struct{} {
	if d == nil {
		return nil
	}
	return d.changed
}

// found is a Watcher's OnChange: it keeps the pool's new list and signals
// the change.
func (d *discovery) found(pool string, bs []discover.Backend) {
	list := make([]proxy.Backend, len(bs))
	for i, b := range bs {
		// An SRV weight may exceed the ring's (0..65535): clamp it.
		list[i] = proxy.Backend{Name: b.Name, Addr: b.Addr, Weight: min(max(b.Weight, ring.MinWeight), ring.MaxWeight)}
	}
	d.mu.Lock()
	d.lists[pool] = list
	if len(d.lists) == len(d.order) {
		select {
		case <-d.first:
		default:
			close(d.first)
		}
	}
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default: // a change is already signalled; it takes the latest lists
	}
}

// snapshot returns a copy of the lists found so far, by pool (nil for a
// nil discovery).
func (d *discovery) snapshot() map[string][]proxy.Backend {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string][]proxy.Backend, len(d.lists))
	for k, v := range d.lists {
		out[k] = v // lists are replaced, never changed in place
	}
	return out
}

// waitFirst waits until every discovered pool has a list, at most wait;
// the error names each pool still without one and its lookups so far.
func (d *discovery) waitFirst(ctx context.Context, wait time.Duration, log *zap.Logger) error {
	if len(d.order) > 0 {
		log.Info("waiting for the first DNS answer of each discovered pool", zap.Strings("pools", d.order),
			zap.Duration("at_most", wait))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-d.first:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopped while waiting for the first DNS answer of pools %s", strings.Join(d.order, ", "))
	case <-t.C:
	}
	got := d.snapshot()
	var missing []string
	for _, name := range d.order {
		if _, ok := got[name]; !ok {
			c := d.watchers[name].Counts()
			missing = append(missing, fmt.Sprintf("pools.%s.discover (%d lookups: %d failed, %d empty)",
				name, c.Lookups, c.Failures, c.Empty))
		}
	}
	return fmt.Errorf("no backends found in DNS within %v for %s", wait, strings.Join(missing, "; "))
}

// stop ends every Watcher and waits for them.
func (d *discovery) stop() {
	for _, w := range d.watchers {
		w.Stop()
	}
}

// discoveredPools composes the pools of cfg with the lists found in DNS:
// a pool with a discover section takes its found list. A discovered pool
// without one (added to the file after the start: its Watcher starts
// with the process) is an error naming its key.
func discoveredPools(cfg config.Config, found map[string][]proxy.Backend) (map[string][]proxy.Backend, error) {
	out := map[string][]proxy.Backend{}
	for _, pl := range cfg.Pools {
		if !pl.Discover.Set() {
			continue
		}
		list, ok := found[pl.Name]
		if !ok {
			return nil, fmt.Errorf("pools.%s.discover: not found in DNS since the start; a pool takes its backends from DNS after a restart", pl.Name)
		}
		out[pl.Name] = list
	}
	return out, nil
}
