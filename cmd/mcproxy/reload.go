package main

import (
	"strings"
	"sync"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
	"go.uber.org/zap"
)

// reloader applies edits of the config file to the running proxy. The
// backend list, the ring, the health checker's interval, timeout and
// limits, and the ejection cap change live; any other changed key is logged as needing a restart
// and keeps its running value.
type reloader struct {
	path  string
	proxy *proxy.Proxy
	log   *zap.Logger

	mu      sync.Mutex // one reload at a time (file watch and SIGHUP)
	running config.Config
}

// reload loads the file again and applies what changed. A file that does
// not load leaves everything as it is; the error names the problem.
func (r *reloader) reload(trigger string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proxy == nil {
		return // serve failed before the proxy ran; nothing to apply to
	}
	next, err := config.Load(r.path)
	if err != nil {
		r.proxy.CountReloadFailure()
		r.log.Error("config reload refused; the running config stays in force",
			zap.String("trigger", trigger), zap.Error(err))
		return
	}
	var live, restart []string
	for _, key := range config.Diff(r.running, next) {
		if liveKey(key) {
			live = append(live, key)
		} else {
			restart = append(restart, key)
		}
	}
	if len(restart) > 0 {
		r.log.Warn("config keys changed that apply only after a restart; their running values stay",
			zap.Strings("keys", restart))
	}
	// The settings that Reconfigure does not take go first, so that the
	// generation it publishes (stats config_generation) is only seen once
	// everything of the new file is in force. If Reconfigure refuses, they
	// are put back.
	r.proxy.SetHealthConfig(healthFrom(next))
	r.proxy.SetMaxEjected(maxEjectedFrom(next))
	res, err := r.proxy.Reconfigure(backendsFrom(next), ringFrom(next))
	if err != nil {
		r.proxy.SetHealthConfig(healthFrom(r.running))
		r.proxy.SetMaxEjected(maxEjectedFrom(r.running))
		r.proxy.CountReloadFailure()
		r.log.Error("config reload refused; the running config stays in force",
			zap.String("trigger", trigger), zap.Error(err))
		return
	}
	r.running.Health.MaxEjected = next.Health.MaxEjected
	r.running.Backends, r.running.Ring = next.Backends, next.Ring
	r.running.Health.Interval, r.running.Health.Timeout = next.Health.Interval, next.Health.Timeout
	r.running.Health.FailureLimit, r.running.Health.SuccessLimit = next.Health.FailureLimit, next.Health.SuccessLimit
	r.log.Info("config reloaded", zap.String("trigger", trigger), zap.Uint64("generation", res.Generation),
		zap.Strings("changed", live), zap.Strings("added", res.Added), zap.Strings("removed", res.Removed),
		zap.Strings("reweighted", res.Reweighted), zap.Strings("readdressed", res.Readdressed),
		zap.Strings("replaced", res.Replaced), zap.Bool("ring_changed", res.RingChanged))
}

// liveKey reports whether a changed config key applies without a restart.
func liveKey(key string) bool {
	switch key {
	case "backends", "health.interval", "health.timeout", "health.failure_limit", "health.success_limit",
		"health.max_ejected":
		return true
	}
	return strings.HasPrefix(key, "ring.")
}
