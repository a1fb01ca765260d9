package config

import "strings"

// AppliesLive reports whether a change of the dotted key (as Diff names
// it) applies to a running proxy on reload: the backend list, the ring,
// the health checker's interval, timeout and limits, and the ejection cap.
// Every other key (listen, admin, pprof, disable_flush_all, event_loops,
// health.auto_eject, health.flush_on_readd, backend.*, limits.*,
// failover.ttl, tls.*) applies only after a restart. (The TLS files'
// contents are reloaded live when they change, by cmd/mcproxy's watch of
// them, not by a config reload.) The Applies column of
// docs/configuration.md states the same split (TestConfigPageTable).
func AppliesLive(key string) bool {
	switch key {
	case "backends", "health.interval", "health.timeout", "health.failure_limit", "health.success_limit",
		"health.max_ejected":
		return true
	}
	return strings.HasPrefix(key, "backends[") || strings.HasPrefix(key, "ring.")
}
