package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/config"
)

// TestWithLive: a reload takes exactly the keys that apply live
// (config.AppliesLive) from the new file and keeps the running value of
// every other.
func TestWithLive(t *testing.T) {
	running := config.Default()
	running.Backends = []config.Backend{{Addr: "127.0.0.1:11311", Weight: 1}}
	next := running
	next.Listen, next.Admin, next.Pprof, next.DisableFlushAll = "127.0.0.1:1", "127.0.0.1:2", true, true
	next.Backends = []config.Backend{{Name: "a", Addr: "127.0.0.1:11312", Weight: 2}}
	next.Ring.Partitions, next.Ring.ReplicationFactor, next.Ring.Load = 7, 8, 2
	next.Health.Interval, next.Health.Timeout = time.Hour, time.Minute
	next.Health.FailureLimit, next.Health.SuccessLimit, next.Health.MaxEjected = 9, 9, "1"
	next.Health.AutoEject, next.Health.FlushOnReadd = false, false
	next.Backend.Connections, next.Backend.Timeout = 9, time.Hour
	next.Limits.MaxConnections, next.Failover.TTL = 9, time.Hour

	got := withLive(running, next)
	all := config.Diff(running, next)
	taken, kept := config.Diff(running, got), config.Diff(got, next)
	for _, k := range taken {
		if !config.AppliesLive(k) {
			t.Errorf("reload took %s, which applies at restart", k)
		}
	}
	for _, k := range kept {
		if config.AppliesLive(k) {
			t.Errorf("reload kept the running %s, which applies live", k)
		}
	}
	if both := append(slices.Clone(taken), kept...); len(both) != len(all) {
		t.Errorf("changed %v, taken %v, kept %v", all, taken, kept)
	}
	if !slices.Contains(taken, "health.max_ejected") ||
		!slices.Contains(kept, "health.auto_eject") {
		t.Errorf("taken %v, kept %v", taken, kept)
	}
}

// TestWithLiveKeepsDiscover: the discover keys apply at a restart, so a
// reload keeps the running pool's discover section; a pool switched
// between backends and discover is refused by its key.
func TestWithLiveKeepsDiscover(t *testing.T) {
	running := config.Default()
	running.Pools = []config.Pool{{Name: "main", Discover: config.Discover{SRV: "_a._tcp.mc.test"}}}
	next := running
	next.Pools = []config.Pool{{Name: "main", Discover: config.Discover{SRV: "_b._tcp.mc.test"}, Distribution: "ketama"}}
	got := withLive(running, next)
	if got.Pools[0].Discover.SRV != "_a._tcp.mc.test" || got.Pools[0].Distribution != "ketama" {
		t.Errorf("pool after the reload: %+v", got.Pools[0])
	}
	if err := discoverSwitched(running, next); err != nil {
		t.Error(err)
	}
	next.Pools = []config.Pool{{Name: "main", Backends: []config.Backend{{Addr: "127.0.0.1:11311", Weight: 1}}}}
	if err := discoverSwitched(running, next); err == nil || !strings.Contains(err.Error(), "pools.main.discover: ") {
		t.Errorf("switch to backends: %v", err)
	}
}
