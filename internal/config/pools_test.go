package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/ring"
)

const poolsYAML = `
backends: [127.0.0.1:11311]
pools:
  sessions:
    backends:
      - {name: s1, addr: 127.0.0.1:11411}
      - 127.0.0.1:11412
    ring: {partitions: 101}
  main:
    backends:
      - {name: cache-a, addr: 127.0.0.1:11511, weight: 2}
      - 127.0.0.1:11311
    distribution: ketama
    hash_tag: "{}"
  old:
    backends: [127.0.0.1:11611]
    distribution: modula
    hash: crc32a
ring: {load: 2}
routes:
  - {prefix: "sess:", pool: sessions}
  - {prefix: "old:", pool: old}
  - {pool: main, warm_from: old}
`

// TestParsePools: pools keep the file's order and get their defaults: ring
// for a pool without distribution, with the top-level ring's values for
// the keys its ring section leaves out (even when the top-level ring comes
// after it), and fnv1a_64 for ketama without a hash.
func TestParsePools(t *testing.T) {
	cfg, err := Parse([]byte(poolsYAML), "pools.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top := Ring{Partitions: ring.DefaultPartitions, ReplicationFactor: ring.DefaultReplicationFactor, Load: 2}
	want := []Pool{
		{Name: "sessions", Backends: []Backend{{Name: "s1", Addr: "127.0.0.1:11411", Weight: 1}, {Addr: "127.0.0.1:11412", Weight: 1}},
			Distribution: "ring", Ring: Ring{Partitions: 101, ReplicationFactor: ring.DefaultReplicationFactor, Load: 2}, Replicas: 1, TLS: defaultBackendTLS()},
		{Name: "main", Backends: []Backend{{Name: "cache-a", Addr: "127.0.0.1:11511", Weight: 2}, {Addr: "127.0.0.1:11311", Weight: 1}},
			Distribution: "ketama", Hash: "fnv1a_64", HashTag: "{}", Replicas: 1, TLS: defaultBackendTLS()},
		{Name: "old", Backends: []Backend{{Addr: "127.0.0.1:11611", Weight: 1}}, Distribution: "modula", Hash: "crc32a", Replicas: 1, TLS: defaultBackendTLS()},
	}
	if !reflect.DeepEqual(cfg.Pools, want) {
		t.Errorf("pools:\n got %+v\nwant %+v", cfg.Pools, want)
	}
	routes := []Route{{Prefix: "sess:", Pool: "sessions"}, {Prefix: "old:", Pool: "old"}, {Pool: "main", WarmFrom: "old"}}
	if !reflect.DeepEqual(cfg.Routes, routes) {
		t.Errorf("routes: %+v", cfg.Routes)
	}
	var names []string
	for _, p := range cfg.PoolList() {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"default", "sessions", "main", "old"}) {
		t.Errorf("PoolList: %v", names)
	}
	if d := cfg.PoolList()[0]; d.Ring != top || d.Distribution != ring.DistRing {
		t.Errorf("the default pool: %+v", d)
	}
	if o := cfg.Placement(cfg.Pools[1]); o.Ring != (ring.Config{}) || o.Distribution != "ketama" {
		t.Errorf("ketama's placement options: %+v", o)
	}
}

// TestImpliedDefaultRoute: with one pool and no routes, that pool takes
// every key; the top-level backends alone keep Pools and Routes empty.
func TestImpliedDefaultRoute(t *testing.T) {
	cfg, err := Parse([]byte("pools:\n  only:\n    backends: [127.0.0.1:11311]\n"), "one.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.RouteList(); !reflect.DeepEqual(r, []Route{{Pool: "only"}}) {
		t.Errorf("RouteList: %+v", r)
	}
	cfg, err = Parse([]byte("backends: [127.0.0.1:11311]\n"), "plain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pools != nil || cfg.Routes != nil {
		t.Errorf("a plain config has pools %v, routes %v", cfg.Pools, cfg.Routes)
	}
	if r := cfg.RouteList(); !reflect.DeepEqual(r, []Route{{Pool: "default"}}) {
		t.Errorf("RouteList: %+v", r)
	}
}

func TestPoolErrors(t *testing.T) {
	const two = "pools:\n  a:\n    backends: [127.0.0.1:11311]\n  b:\n    backends: [127.0.0.1:11312]\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"pools not a mapping", "pools: [a]\n", []string{`line 1: pools: want a mapping of pool names to pools, got a list`}},
		{"empty pool", "pools:\n  a:\n", []string{"line 2: pools.a: empty pool"}},
		{"no backends", "pools:\n  a: {distribution: ring}\n", []string{"line 2: pools.a.backends: at least one backend is required"}},
		{"unknown pool key", "pools:\n  a:\n    backends: [127.0.0.1:1]\n    distrbution: ring\n", []string{`line 4: unknown key "pools.a.distrbution"`}},
		{"bad pool name", "pools:\n  a.b:\n    backends: [127.0.0.1:1]\n", []string{`line 2: pools.a.b: pool name "a.b" may hold only letters, digits, _ and -`}},
		{"pool repeated", "pools:\n  a:\n    backends: [127.0.0.1:1]\n  a:\n    backends: [127.0.0.1:2]\n", []string{"line 4: pools.a: pool repeated (first at line 2)"}},
		{"default beside top-level backends", "backends: [127.0.0.1:1]\npools:\n  default:\n    backends: [127.0.0.1:2]\nroutes: [{pool: default}]\n",
			[]string{"line 3: pools.default: the top-level backends are the pool named default"}},
		{"bad backend addr", "pools:\n  s:\n    backends:\n      - 127.0.0.1:1\n      - {addr: nope}\n",
			[]string{`line 5: pools.s.backends[1].addr: "nope" is not host:port`}},
		{"duplicate in a pool", "pools:\n  s:\n    backends: [127.0.0.1:1, 127.0.0.1:1]\n",
			[]string{"pools.s.backends[1].addr: 127.0.0.1:1 duplicates pools.s.backends[0].addr"}},
		{"same server spelled twice in a pool", "pools:\n  s:\n    backends: [127.0.0.1:11311, localhost:11311]\n",
			[]string{"pools.s.backends[1].addr: localhost:11311 resolves to the same server as pools.s.backends[0].addr"}},
		{"weight", "pools:\n  s:\n    backends:\n      - {addr: 127.0.0.1:1, weight: 0}\n", []string{"line 4: pools.s.backends[0].weight: 0 is out of range 1..1000"}},
		{"bad backend and distribution", "pools:\n  s:\n    backends: [nope]\n    distribution: jump\n",
			[]string{`line 3: pools.s.backends[0].addr: "nope" is not host:port`, `line 4: pools.s.distribution: unknown distribution "jump"`}},
		{"unknown distribution", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    distribution: jump\n",
			[]string{`line 4: pools.s.distribution: unknown distribution "jump", want one of ring, ketama, libketama, dalli, modula`}},
		{"unknown hash", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    distribution: ketama\n    hash: sha1\n",
			[]string{`line 5: pools.s.hash: unknown hash "sha1"`}},
		{"hash on a fixed-hash distribution", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    distribution: dalli\n    hash: md5\n",
			[]string{`line 5: pools.s.hash: distribution dalli has a fixed key hash`}},
		{"hash on ring", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    hash: md5\n", []string{`line 4: pools.s.hash: distribution ring has a fixed key hash`}},
		{"hash_tag of three bytes", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    hash_tag: '{{}'\n",
			[]string{`line 4: pools.s.hash_tag: hash tag "{{}" must be two bytes`}},
		{"ring settings on ketama", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    distribution: ketama\n    ring: {partitions: 7}\n",
			[]string{"line 5: pools.s.ring: distribution ketama takes no ring settings"}},
		{"pool ring range", "pools:\n  s:\n    backends: [127.0.0.1:1]\n    ring:\n      load: 0.5\n",
			[]string{"line 5: pools.s.ring.load: 0.5 must be a finite number >= 1.0"}},
		{"two servers hashed alike", "pools:\n  s:\n    backends: [127.0.0.1:1, {name: '127.0.0.1:1', addr: '127.0.0.1:2'}]\n    distribution: ketama\n",
			[]string{"pools.s.backends[1].name: 127.0.0.1:1 duplicates the name of pools.s.backends[0]"}},
		{"libketama hashes host alone on 11211", "pools:\n  s:\n    backends: [{name: h, addr: '127.0.0.1:1'}, 'h:11211']\n    distribution: libketama\n",
			[]string{`line 3: pools.s.backends: libketama: servers 0 and 1 are both hashed as "h"`}},
		{"server named twice across pools", two + "  c:\n    backends: [{name: x, addr: '127.0.0.1:11311'}]\nroutes: [{pool: a}]\n",
			[]string{"line 7: pools.c.backends[0].name: server 127.0.0.1:11311 is named x here and 127.0.0.1:11311 in pools.a.backends[0]; a server listed in several pools has one name"}},
		{"name for two servers across pools", "pools:\n  a:\n    backends: [{name: x, addr: '127.0.0.1:1'}]\n  b:\n    backends: [{name: x, addr: '127.0.0.1:2'}]\nroutes: [{pool: a}]\n",
			[]string{"line 5: pools.b.backends[0].name: x is the name of pools.a.backends[0] (127.0.0.1:1); one name is one server"}},
		{"server respelled across pools", "backends: [127.0.0.1:11311]\npools:\n  b:\n    backends: [{name: '127.0.0.1:11311', addr: 'localhost:11311'}]\nroutes: [{pool: b}]\n",
			[]string{"pools.b.backends[0].addr: localhost:11311 resolves to the same server as backends[0].addr 127.0.0.1:11311"}},
		{"routes required", two, []string{"routes: required with more than one pool"}},
		{"routes not a list", two + "routes: {pool: a}\n", []string{"line 6: routes: want a list of routes, got a mapping"}},
		{"route not a mapping", two + "routes: [a]\n", []string{`line 6: routes[0]: want a mapping {prefix: ..., pool: ...}, got "a"`}},
		{"unknown route key", two + "routes:\n  - {pool: a, prefx: x}\n", []string{`line 7: unknown key "routes[0].prefx"`}},
		{"unknown pool", two + "routes:\n  - {prefix: x, pool: a}\n  - {pool: c}\n", []string{`line 8: routes[1].pool: unknown pool "c"; the pools are a, b`}},
		{"route without pool", two + "routes:\n  - {prefix: x}\n  - {pool: a}\n", []string{"line 7: routes[0].pool: required"}},
		{"never matches", two + "routes:\n  - {prefix: a, pool: a}\n  - {prefix: ab, pool: b}\n  - {pool: a}\n",
			[]string{`line 8: routes[1]: never matches: routes[0] prefix "a" comes first`}},
		{"default not last", two + "routes:\n  - {pool: a}\n  - {prefix: b, pool: b}\n",
			[]string{`line 8: routes[1]: never matches: routes[0] (no prefix: the default route) comes first`, "line 8: routes[1].prefix: the last route must have no prefix"}},
		{"no default route", two + "routes:\n  - {prefix: x, pool: a}\n", []string{"line 7: routes[0].prefix: the last route must have no prefix"}},
		{"prefix with a space", two + "routes:\n  - {prefix: 'a b', pool: a}\n  - {pool: b}\n", []string{`routes[0].prefix: "a b" must not contain spaces`}},
		{"warm_from unknown", two + "routes:\n  - {pool: a, warm_from: z}\n", []string{`line 7: routes[0].warm_from: unknown pool "z"`}},
		{"warm_from itself", two + "routes:\n  - {pool: a, warm_from: a}\n", []string{`routes[0].warm_from: "a" is the route's own pool`}},
		{"route to default", "backends: [127.0.0.1:1]\nroutes: [{pool: main}]\n", []string{`routes[0].pool: unknown pool "main"; the pools are default`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil {
				t.Fatalf("loads:\n%s", tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestPoolsValid: what the rules allow.
func TestPoolsValid(t *testing.T) {
	t.Run("a server in two pools with the same TLS", func(t *testing.T) {
		doc := "backend:\n  tls: {enabled: true, server_name: mc.test}\npools:\n  a:\n    backends: [127.0.0.1:1]\n" +
			"  b:\n    backends: [127.0.0.1:1, 127.0.0.1:2]\n    tls: {enabled: true, server_name: mc.test}\n" +
			"  c:\n    backends: [127.0.0.1:3]\n    tls: {enabled: false}\n" +
			"routes: [{prefix: 'b:', pool: b}, {prefix: 'c:', pool: c}, {pool: a}]\n"
		cfg, err := Parse([]byte(doc), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Pools[0].TLS != cfg.Backend.TLS || cfg.Pools[2].TLS.Enabled {
			t.Errorf("pool TLS: a %+v (want backend.tls %+v), c %+v (want off)", cfg.Pools[0].TLS, cfg.Backend.TLS, cfg.Pools[2].TLS)
		}
	})
	for name, doc := range map[string]string{
		"a server in two pools":       "backends: [127.0.0.1:11311]\npools:\n  new:\n    backends: [127.0.0.1:11311, 127.0.0.1:11312]\n    distribution: ketama\nroutes: [{pool: new, warm_from: default}]\n",
		"named in two pools":          "pools:\n  a:\n    backends: [{name: x, addr: '127.0.0.1:1'}]\n  b:\n    backends: [{name: x, addr: '127.0.0.1:1', weight: 3}]\nroutes: [{prefix: b, pool: b}, {pool: a}]\n",
		"one pool with routes":        "pools:\n  a:\n    backends: [127.0.0.1:1]\nroutes: [{prefix: x, pool: a}, {pool: a}]\n",
		"prefixes that share a start": "backends: [127.0.0.1:1]\npools:\n  b:\n    backends: [127.0.0.1:2]\nroutes: [{prefix: ab, pool: b}, {prefix: a, pool: default}, {pool: b}]\n",
		"pools section empty":         "backends: [127.0.0.1:1]\npools:\n",
	} {
		if _, err := Parse([]byte(doc), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDiffPools(t *testing.T) {
	base, err := Parse([]byte(poolsYAML), "pools.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"unchanged", func(c *Config) {}, []string{}},
		{"pools reordered", func(c *Config) { c.Pools[0], c.Pools[2] = c.Pools[2], c.Pools[0] }, []string{}},
		{"weight", func(c *Config) { c.Pools[1].Backends[0].Weight = 3 }, []string{"pools.main.backends[0].weight"}},
		{"backends reordered", func(c *Config) {
			bs := c.Pools[1].Backends
			c.Pools[1].Backends = []Backend{bs[1], bs[0]}
		}, []string{"pools.main.backends[0].addr", "pools.main.backends[0].name", "pools.main.backends[0].weight",
			"pools.main.backends[1].addr", "pools.main.backends[1].name", "pools.main.backends[1].weight"}},
		{"backend added", func(c *Config) {
			c.Pools[2].Backends = append(c.Pools[2].Backends, Backend{Addr: "127.0.0.1:9", Weight: 1})
		}, []string{"pools.old.backends[1]"}},
		{"hash", func(c *Config) { c.Pools[2].Hash = "md5" }, []string{"pools.old.hash"}},
		{"pool ring", func(c *Config) { c.Pools[0].Ring.Load = 3 }, []string{"pools.sessions.ring.load"}},
		{"pool removed", func(c *Config) { c.Pools = c.Pools[:2] }, []string{"pools.old"}},
		{"route prefix", func(c *Config) { c.Routes[1].Prefix = "older:" }, []string{"routes[1].prefix"}},
		{"route removed", func(c *Config) { c.Routes = c.Routes[1:] }, []string{
			"routes[0].pool", "routes[0].prefix", "routes[1].pool", "routes[1].prefix", "routes[1].warm_from", "routes[2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := Parse([]byte(poolsYAML), "pools.yaml")
			if err != nil {
				t.Fatal(err)
			}
			tt.change(&next)
			if got := Diff(base, next); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
			for _, k := range Diff(base, next) {
				if !AppliesLive(k) {
					t.Errorf("%s does not apply live", k)
				}
			}
		})
	}
}

// BenchmarkParsePools is the cost of loading a config of four pools, which
// builds each pool's placement once at load (a start, a reload, -check).
func BenchmarkParsePools(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Parse([]byte(poolsYAML), "pools.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPoolReplicas: a pool's replicas is its own when set, else the
// top-level replicas, and is checked with its key.
func TestPoolReplicas(t *testing.T) {
	doc := "replicas: 3\npools:\n  a:\n    replicas: 2\n    backends: [127.0.0.1:11311, 127.0.0.1:11312]\n" +
		"  b:\n    backends: [{addr: 127.0.0.1:11313, zone: z1}]\n" +
		"routes:\n  - {prefix: \"a:\", pool: a}\n  - {pool: b}\n"
	cfg, err := Parse([]byte(doc), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pools[0].Replicas != 2 || cfg.Pools[1].Replicas != 3 || cfg.Pools[1].Backends[0].Zone != "z1" {
		t.Fatalf("pools: %+v", cfg.Pools)
	}
	bad := strings.Replace(doc, "replicas: 2", "replicas: 9", 1)
	bad = strings.Replace(bad, "zone: z1", "zone: \"a b\"", 1)
	_, err = Parse([]byte(bad), "r.yaml")
	for _, want := range []string{"pools.a.replicas: 9 is out of range", "pools.b.backends[0].zone"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad pool replicas and zone: %v, want %q", err, want)
		}
	}
}
