package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

const poolsConfig = `backends: [127.0.0.1:11311, {name: cache-4, addr: 127.0.0.1:11314}]
ring: {partitions: 101}
pools:
  sessions:
    backends: [127.0.0.1:11411, 127.0.0.1:11311]
    distribution: ketama
    hash_tag: "{}"
  old:
    backends: [{addr: 127.0.0.1:11611, weight: 3}]
    distribution: modula
    hash: crc32a
routes:
  - {prefix: "sess:", pool: sessions}
  - {pool: default, warm_from: old}
`

func loadConfig(t *testing.T, text string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPlainConfigKeepsItsOptions: a config of top-level backends only goes
// to the proxy as it always has (Backends and Ring, no Pools or Routes),
// so every existing config keeps its placement.
func TestPlainConfigKeepsItsOptions(t *testing.T) {
	cfg := loadConfig(t, "backends: [127.0.0.1:11311, {name: b, addr: 127.0.0.1:11312, weight: 2}]\nring: {load: 2}\n")
	o, _ := optionsFrom(cfg, nil, zap.NewNop())
	want := []proxy.Backend{{Addr: "127.0.0.1:11311", Weight: 1}, {Name: "b", Addr: "127.0.0.1:11312", Weight: 2}}
	if !reflect.DeepEqual(o.Backends, want) || o.Pools != nil || o.Routes != nil {
		t.Errorf("options: backends %+v, pools %+v, routes %+v", o.Backends, o.Pools, o.Routes)
	}
	if o.Ring != (ring.Config{Partitions: ring.DefaultPartitions, ReplicationFactor: ring.DefaultReplicationFactor, Load: 2}) {
		t.Errorf("ring: %+v", o.Ring)
	}
}

// TestPoolsGoToTheProxy: the top-level backends become the pool "default"
// first, the pools follow in file order with their placements, and the
// proxy's own checks of pools and routes pass (until the data path serves
// named pools, it refuses them after those checks).
func TestPoolsGoToTheProxy(t *testing.T) {
	cfg := loadConfig(t, poolsConfig)
	s, _ := settingsFrom(cfg, nil)
	if s.Backends != nil {
		t.Errorf("Backends %+v beside Pools", s.Backends)
	}
	wantPools := []proxy.Pool{
		{Name: "default", Backends: []proxy.Backend{{Addr: "127.0.0.1:11311", Weight: 1}, {Name: "cache-4", Addr: "127.0.0.1:11314", Weight: 1}},
			Placement: ring.PlacementOptions{Distribution: "ring", Ring: ring.Config{Partitions: 101, ReplicationFactor: ring.DefaultReplicationFactor, Load: ring.DefaultLoad}}, Replicas: 1},
		{Name: "sessions", Backends: []proxy.Backend{{Addr: "127.0.0.1:11411", Weight: 1}, {Addr: "127.0.0.1:11311", Weight: 1}},
			Placement: ring.PlacementOptions{Distribution: "ketama", Hash: "fnv1a_64", HashTag: "{}"}, Replicas: 1},
		{Name: "old", Backends: []proxy.Backend{{Addr: "127.0.0.1:11611", Weight: 3}},
			Placement: ring.PlacementOptions{Distribution: "modula", Hash: "crc32a"}, Replicas: 1},
	}
	if !reflect.DeepEqual(s.Pools, wantPools) {
		t.Errorf("pools:\n got %+v\nwant %+v", s.Pools, wantPools)
	}
	wantRoutes := []proxy.Route{{Prefix: "sess:", Pool: "sessions"}, {Pool: "default", WarmFrom: "old"}}
	if !reflect.DeepEqual(s.Routes, wantRoutes) {
		t.Errorf("routes: %+v", s.Routes)
	}
	for _, text := range []string{poolsConfig, "pools:\n  only:\n    backends: [127.0.0.1:11311]\n"} {
		o, err := optionsFrom(loadConfig(t, text), nil, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		p, err := proxy.New(o)
		if err != nil {
			t.Errorf("proxy.New: %v, want it to accept the pools", err)
			continue
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// TestCheckPrintsPools: -check keeps its first line and then shows each
// pool's placement with its defaults and each route in order.
func TestCheckPrintsPools(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	writeFile(t, file, poolsConfig)
	var out, warn bytes.Buffer
	if err := check(file, &out, &warn); err != nil {
		t.Fatal(err)
	}
	want := "config " + file + ` is valid: listen 127.0.0.1:11211, 4 backends in 3 pools
pool default: distribution ring, ring {partitions: 101, replication_factor: 160, load: 1.25}, 2 backends
  127.0.0.1:11311 weight 1
  cache-4 127.0.0.1:11314 weight 1
pool sessions: distribution ketama, hash fnv1a_64, hash_tag "{}", 2 backends
  127.0.0.1:11411 weight 1
  127.0.0.1:11311 weight 1
pool old: distribution modula, hash crc32a, 1 backend
  127.0.0.1:11611 weight 3
route prefix "sess:" -> sessions
route (default) -> default, warm from old
`
	if out.String() != want {
		t.Errorf("-check printed:\n%s\nwant:\n%s", out.String(), want)
	}
	if warn.Len() > 0 {
		t.Errorf("warnings: %s", warn.String())
	}
}

// TestUnresolvedInPools: a pool's backend that does not resolve is warned
// of by its key, once however many pools list it.
func TestUnresolvedInPools(t *testing.T) {
	cfg := loadConfig(t, "pools:\n  a:\n    backends: [127.0.0.1:11311, nosuchhost.invalid:11211]\n"+
		"  b:\n    backends: [nosuchhost.invalid:11211]\nroutes: [{pool: a}]\n")
	ws := unresolvedBackends(cfg)
	if len(ws) != 1 || !strings.HasPrefix(ws[0], "pools.a.backends[1].addr nosuchhost.invalid:11211 does not resolve") {
		t.Errorf("warnings: %q", ws)
	}
	if got := backendAddrs(cfg); !reflect.DeepEqual(got, []string{"127.0.0.1:11311", "nosuchhost.invalid:11211"}) {
		t.Errorf("backendAddrs: %v", got)
	}
}

// TestImportTwemproxy: -import-twemproxy prints a config that -check
// accepts; a missing or bad file is an error naming it.
func TestImportTwemproxy(t *testing.T) {
	dir := t.TempDir()
	in, conv := filepath.Join(dir, "nutcracker.yml"), filepath.Join(dir, "mcproxy.yaml")
	writeFile(t, in, "alpha:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n  servers:\n   - 127.0.0.1:11212:1 a\n   - 127.0.0.1:11213:2\n")
	var out bytes.Buffer
	if err := importTwemproxy(in, &out); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conv, out.String())
	var checked, warn bytes.Buffer
	if err := check(conv, &checked, &warn); err != nil {
		t.Fatalf("-check of the converted config: %v\n%s", err, out.String())
	}
	if !strings.Contains(checked.String(), "pool alpha: distribution ketama, hash fnv1a_64, 2 backends\n  a 127.0.0.1:11212 weight 1\n") {
		t.Errorf("-check:\n%s", checked.String())
	}
	if err := importTwemproxy(in+".gone", &out); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	writeFile(t, in, "alpha:\n  servers: [/tmp/sock:1]\n")
	if err := importTwemproxy(in, &out); err == nil || !strings.Contains(err.Error(), in+": pool alpha: line 2") {
		t.Errorf("bad file: %v", err)
	}
}

// TestCheckOutputInDocs: docs/configuration.md shows what -check prints
// for its pools example; it must be what -check prints.
func TestCheckOutputInDocs(t *testing.T) {
	page, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(page), "\n## Pools and routes\n")
	section, _, _ = strings.Cut(section, "\n## ")
	_, example, ok1 := strings.Cut(section, "```yaml\n")
	example, rest, ok2 := strings.Cut(example, "```")
	_, shown, ok3 := strings.Cut(rest, "\n```\n")
	shown, _, ok4 := strings.Cut(shown, "```")
	if !ok || !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatal("docs/configuration.md: no Pools and routes section with a yaml example and the -check output after it")
	}
	file := filepath.Join(t.TempDir(), "mcproxy.yaml")
	writeFile(t, file, example)
	var out, warn bytes.Buffer
	if err := check(file, &out, &warn); err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(out.String(), file, "mcproxy.yaml"); got != shown {
		t.Errorf("-check prints:\n%s\nthe page shows:\n%s", got, shown)
	}
}
