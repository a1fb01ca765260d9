package config

import (
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/discover"
)

func TestDiscoverLoads(t *testing.T) {
	cfg, err := Parse([]byte("pools:\n  main:\n    discover: {srv: _memcache._tcp.mc.test, resolver: 127.0.0.1:8600}\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Pools[0].Discover
	if d.Interval != discover.DefaultInterval || d.LookupTimeout != discover.DefaultLookupTimeout ||
		d.MissingLimit != discover.DefaultMissingLimit || len(cfg.Pools[0].Backends) != 0 {
		t.Fatalf("pool %+v: want the discover package's defaults and no backends", cfg.Pools[0])
	}
	next := cfg
	next.Pools = []Pool{cfg.Pools[0]}
	next.Pools[0].Discover.Interval = time.Second
	if keys := Diff(cfg, next); len(keys) != 1 || keys[0] != "pools.main.discover.interval" || AppliesLive(keys[0]) {
		t.Fatalf("Diff %v: want pools.main.discover.interval, applied at a restart", keys)
	}
}

func TestDiscoverProblemsNameTheirKeys(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"backends: [127.0.0.1:11311]\n    discover: {srv: _mc._tcp.test}", "pools.main.discover: a pool has either backends or discover"},
		{"discover: {interval: 1s}", "pools.main.discover: one of srv and host is required"},
		{"discover: {srv: _mc._tcp.test, host: mc.test}", "pools.main.discover.host: set only one"},
		{"discover: {srv: _mc._tcp.test, port: 11211}", "pools.main.discover.port: not used with srv"},
		{"discover: {host: mc.test}", "pools.main.discover.port: required with host"},
		{"discover: {srv: _mc._tcp.test, resolver: nowhere}", "pools.main.discover.resolver:"},
		{"discover: {srv: 'mc test'}", "pools.main.discover.srv:"},
		{"discover: {srv: _mc._tcp.test, missing_limit: 0}", "pools.main.discover.missing_limit: 0 is out of range"},
	} {
		_, err := Parse([]byte("pools:\n  main:\n    "+c.body+"\n"), "t")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
		}
	}
}
