package main

import (
	"fmt"
	"slices"
	"sync"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
	"go.uber.org/zap"
)

// reloader applies edits of the config file to the running proxy. The keys
// that apply live (config.AppliesLive: the backend list, the ring, the
// health checker's interval, timeout and limits, the ejection cap, the
// pools and the routes) go
// to the proxy in one Reconfigure; any other changed key is logged as
// needing a restart and keeps its running value.
type reloader struct {
	path  string
	proxy *proxy.Proxy
	log   *zap.Logger
	disc  *discovery // the pools found in DNS; set before the proxy starts

	mu      sync.Mutex // one reload at a time (file watch and SIGHUP)
	running config.Config
}

// reload loads the file again and applies what changed. A file that does
// not load, or that the proxy refuses, leaves everything as it is; the
// error names the problem.
func (r *reloader) reload(trigger string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proxy == nil {
		return // serve failed before the proxy ran; nothing to apply to
	}
	next, err := config.Load(r.path)
	if err != nil {
		r.refused(trigger, err)
		return
	}
	var live, restart []string
	for _, key := range config.Diff(r.running, next) {
		if config.AppliesLive(key) {
			live = append(live, key)
		} else {
			restart = append(restart, key)
		}
	}
	if len(restart) > 0 {
		r.log.Warn("config keys changed that apply only after a restart; their running values stay",
			zap.Strings("keys", restart))
	}
	if err := discoverSwitched(r.running, next); err != nil {
		r.refused(trigger, err)
		return
	}
	s, err := settingsFrom(withLive(r.running, next), r.disc.snapshot())
	if err != nil {
		r.refused(trigger, err)
		return
	}
	res, err := r.proxy.Reconfigure(s)
	if err != nil {
		r.refused(trigger, err)
		return
	}
	r.running = withLive(r.running, next)
	r.disc.setCap(s.MaxEjected)
	r.disc.resetRemovals()
	r.log.Info("config reloaded", zap.String("trigger", trigger), zap.Uint64("generation", res.Generation),
		zap.Strings("changed", live), zap.Strings("added", res.Added), zap.Strings("removed", res.Removed),
		zap.Strings("reweighted", res.Reweighted), zap.Strings("readdressed", res.Readdressed),
		zap.Strings("replaced", res.Replaced), zap.Bool("ring_settings_changed", res.RingChanged),
		zap.Bool("health_changed", res.HealthChanged), zap.Bool("max_ejected_changed", res.MaxEjectedChanged))
}

// withLive returns running with the keys that apply live taken from next:
// what is in force once Reconfigure has accepted settingsFrom(next).
func withLive(running, next config.Config) config.Config {
	running.Backends, running.Ring = next.Backends, next.Ring
	pools := make([]config.Pool, len(next.Pools))
	for i, pl := range next.Pools {
		pools[i] = pl
		// The discover keys apply at a restart: the Watchers start with
		// the process, and a pool keeps the one it started with.
		if j := slices.IndexFunc(running.Pools, func(o config.Pool) bool { return o.Name == pl.Name }); j >= 0 {
			pools[i].Discover = running.Pools[j].Discover
		}
	}
	running.Pools, running.Routes = pools, next.Routes
	running.Health.Interval, running.Health.Timeout = next.Health.Interval, next.Health.Timeout
	running.Health.FailureLimit, running.Health.SuccessLimit = next.Health.FailureLimit, next.Health.SuccessLimit
	running.Health.MaxEjected = next.Health.MaxEjected
	return running
}

// discoverSwitched refuses a reload that turns a running pool from listed
// backends to DNS or back: the Watchers start with the process.
func discoverSwitched(running, next config.Config) error {
	for _, pl := range next.Pools {
		j := slices.IndexFunc(running.Pools, func(o config.Pool) bool { return o.Name == pl.Name })
		if j >= 0 && running.Pools[j].Discover.Set() != pl.Discover.Set() {
			return fmt.Errorf("pools.%s.discover: a pool switches between backends and discover at a restart", pl.Name)
		}
	}
	return nil
}

// rediscovered applies the backend lists found in DNS, with the running
// config, through the same Reconfigure as a reload. A list the proxy
// refuses (a name another pool gives to another server) is logged; the
// running backends stay until the next change.
func (r *reloader) rediscovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proxy == nil {
		return
	}
	s, err := settingsFrom(r.running, r.disc.snapshot())
	if err == nil {
		var res proxy.ReconfigureResult
		if res, err = r.proxy.Reconfigure(s); err == nil {
			if res.Changed() {
				r.log.Info("backends found in DNS applied", zap.Uint64("generation", res.Generation),
					zap.Strings("added", res.Added), zap.Strings("removed", res.Removed),
					zap.Strings("reweighted", res.Reweighted), zap.Strings("readdressed", res.Readdressed))
			}
			return
		}
	}
	r.log.Error("backends found in DNS refused; the running backends stay", zap.Error(err))
}

func (r *reloader) refused(trigger string, err error) {
	r.proxy.CountReloadFailure()
	r.log.Error("config reload refused; the running config stays in force",
		zap.String("trigger", trigger), zap.Error(err))
}
