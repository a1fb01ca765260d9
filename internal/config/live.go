package config

import "strings"

// AppliesLive reports whether a change of the dotted key (as Diff names
// it) applies to a running proxy on reload: the backend list, the ring,
// the pools and routes, the health checker's interval, timeout and
// limits, the ejection cap and replicas.
// Every other key (listen, admin, reuse_port, upgrade_socket, pprof, disable_flush_all, event_loops, zone,
// health.auto_eject, health.flush_on_readd, backend.*, limits.*,
// failover.ttl, tls.*, pools.<name>.discover.*, pools.<name>.tls.*) applies only after a restart. (The TLS files'
// contents are reloaded live when they change, by cmd/mcproxy's watch of
// them, not by a config reload.) The Applies column of
// docs/configuration.md states the same split (TestConfigPageTable).
func AppliesLive(key string) bool {
	switch key {
	case "backends", "health.interval", "health.timeout", "health.failure_limit", "health.success_limit",
		"health.max_ejected", "replicas":
		return true
	}
	if strings.HasPrefix(key, "pools.") && strings.Contains(key, ".discover.") {
		return false // the Watchers start with the process (cmd/mcproxy/discover.go)
	}
	if strings.HasPrefix(key, "pools.") && strings.Contains(key, ".tls.") {
		return false // as backend.tls: the proxy's TLS is built at New (proxy.Options.PoolTLS)
	}
	for _, prefix := range []string{"backends[", "ring.", "pools", "routes"} {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}
