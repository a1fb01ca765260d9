package config

import (
	"reflect"
	"testing"
)

// TestAppliesLive holds the live/restart split of every key of Config: a
// new key must be placed here, on purpose, and a key Diff names is placed
// the same way.
func TestAppliesLive(t *testing.T) {
	live := map[string]bool{
		"backends": true, "backends[].name": true, "backends[].addr": true, "backends[].weight": true,
		"ring.partitions": true, "ring.replication_factor": true, "ring.load": true,
		"health.interval": true, "health.timeout": true, "health.failure_limit": true,
		"health.success_limit": true, "health.max_ejected": true,
		"replicas": true, "backends[].zone": true, "zone": false,
		"pools.<name>.replicas": true, "pools.<name>.backends[].zone": true,
		"listen": false, "admin": false, "reuse_port": false, "upgrade_socket": false, "pprof": false, "disable_flush_all": false, "event_loops": false,
		"health.auto_eject": false, "health.flush_on_readd": false,
		"backend.connections": false, "backend.timeout": false, "backend.connect_timeout": false,
		"limits.max_connections": false, "limits.max_item_size": false,
		"limits.client_idle_timeout": false, "limits.client_output_limit": false,
		"limits.reqs_per_event": false, "limits.read_bytes_per_event": false,
		"failover.ttl": false,
		"pools":        true, "pools.<name>.backends": true, "pools.<name>.backends[].name": true,
		"pools.<name>.backends[].addr": true, "pools.<name>.backends[].weight": true,
		"pools.<name>.distribution": true, "pools.<name>.hash": true, "pools.<name>.hash_tag": true,
		"pools.<name>.ring.partitions": true, "pools.<name>.ring.replication_factor": true,
		"pools.<name>.ring.load":    true,
		"pools.<name>.discover.srv": false, "pools.<name>.discover.host": false, "pools.<name>.discover.port": false,
		"pools.<name>.discover.interval": false, "pools.<name>.discover.resolver": false,
		"pools.<name>.discover.lookup_timeout": false, "pools.<name>.discover.missing_limit": false,
		"pools.<name>.tls.enabled": false, "pools.<name>.tls.ca_file": false, "pools.<name>.tls.cert_file": false,
		"pools.<name>.tls.key_file": false, "pools.<name>.tls.server_name": false, "pools.<name>.tls.min_version": false,
		"routes": true, "routes[].prefix": true, "routes[].pool": true, "routes[].warm_from": true,
		// TLS: the files' contents rotate live (tlsfiles); the keys restart.
		"tls.listen": false, "tls.cert_file": false, "tls.key_file": false, "tls.client_ca_file": false,
		"tls.min_version": false, "tls.handshake_timeout": false,
		"backend.tls.enabled": false, "backend.tls.ca_file": false, "backend.tls.cert_file": false,
		"backend.tls.key_file": false, "backend.tls.server_name": false, "backend.tls.min_version": false,
	}
	var keys []string
	yamlKeys(reflect.TypeOf(Config{}), "", &keys)
	for _, k := range keys {
		want, ok := live[k]
		if !ok {
			t.Errorf("key %s: decide whether it applies live, and say so here and in the Applies column of docs/configuration.md", k)
			continue
		}
		if got := AppliesLive(k); got != want {
			t.Errorf("AppliesLive(%q) = %v, want %v", k, got, want)
		}
	}
	if len(keys) != len(live) {
		t.Errorf("%d keys in Config, %d in this test", len(keys), len(live))
	}
	// The keys Diff reports follow the same split.
	prev := Default()
	prev.Backends = []Backend{{Addr: "127.0.0.1:11311", Weight: 1}}
	next := prev
	next.Backends = []Backend{{Addr: "127.0.0.1:11312", Weight: 1}}
	next.Ring.Load, next.Health.MaxEjected, next.Limits.MaxConnections = 2, "1", 7
	next.Pools = []Pool{{Name: "p", Backends: next.Backends, Distribution: "ketama"}}
	next.Routes = []Route{{Pool: "p"}}
	for _, k := range Diff(prev, next) {
		if AppliesLive(k) != live[pageKey(k)] {
			t.Errorf("Diff's key %s: AppliesLive = %v", k, AppliesLive(k))
		}
	}
}
