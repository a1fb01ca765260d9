package twemimport

import (
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/config"
)

// TestConvertSettings: every twemproxy setting is carried over or said to
// have no equivalent, and the result loads.
func TestConvertSettings(t *testing.T) {
	const in = `alpha:
  listen: 0.0.0.0:22121
  hash: murmur
  hash_tag: "{}"
  distribution: ketama
  timeout: 400
  backlog: 1024
  preconnect: true
  client_connections: 100
  server_connections: 4
  tcpkeepalive: true
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 5
  servers:
   - cache1.example.com:11211:1 c1
   - 10.0.0.2:11211:3
redisy:
  listen: 127.0.0.1:22122
  redis: true
  redis_db: 2
  servers:
   - 127.0.0.1:6379:1
scatter:
  listen: 127.0.0.1:22123
  distribution: random
  timeout: 100
  servers:
   - 127.0.0.1:11212:1
`
	out, err := Convert([]byte(in), "n.yml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		`listen: "0.0.0.0:22121"`,
		"backend:\n  timeout: 400ms\n",
		"health:\n  auto_eject: true\n",
		"  failure_limit: 5\n",
		"server_retry_timeout 2s",
		"alpha: backlog 1024 has no equivalent",
		"alpha: preconnect true has no equivalent",
		"alpha: client_connections 100 has no equivalent",
		"alpha: server_connections 4 has no equivalent",
		"alpha: tcpkeepalive true has no equivalent",
		"pool redisy is a redis pool",
		"pool scatter listened on 127.0.0.1:22123",
		"pool scatter had timeout 100ms",
		"pool scatter had auto_eject_hosts false",
		"  alpha:\n    distribution: ketama\n    hash: murmur\n    hash_tag: \"{}\"\n    backends:\n" +
			"      - {name: \"c1\", addr: \"cache1.example.com:11211\", weight: 1}\n" +
			"      - {addr: \"10.0.0.2:11211\", weight: 3}\n",
		"distribution random has no equivalent",
		"  scatter:\n", "    distribution: ring\n    backends:\n      - {addr: \"127.0.0.1:11212\", weight: 1}\n",
		"routes:\n", "  - pool: alpha\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	cfg, err := config.Parse(out, "converted")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pools) != 2 || cfg.Pools[1].Hash != "" {
		t.Errorf("pools: %+v", cfg.Pools)
	}
}

// TestConvertDefaults: a pool that sets nothing but servers and listen
// gets twemproxy's defaults (ketama, fnv1a_64, no ejection, no timeout).
func TestConvertDefaults(t *testing.T) {
	out, err := Convert([]byte("p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11212:1\n"), "n.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(out, "converted")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Pools[0]; p.Distribution != "ketama" || p.Hash != "fnv1a_64" || cfg.Health.AutoEject || cfg.Routes != nil {
		t.Errorf("converted: %+v, auto_eject %v, routes %v\n%s", p, cfg.Health.AutoEject, cfg.Routes, out)
	}
	if !strings.Contains(string(out), "sets none (twemproxy waits forever)") {
		t.Errorf("no note on the missing timeout:\n%s", out)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "the file is empty"},
		{"not a mapping", "- a\n", "want a mapping of pool names"},
		{"unknown key", "p:\n  listen: 127.0.0.1:1\n  dist: ketama\n  servers: [127.0.0.1:2:1]\n", `line 3: unknown key "dist"`},
		{"no servers", "p:\n  listen: 127.0.0.1:1\n", "pool p: line 1: no servers"},
		{"unix socket server", "p:\n  servers: [/tmp/mc.sock:1]\n", "unix socket server has no equivalent"},
		{"no weight", "p:\n  servers: ['127.0.0.1:11211']\n", `pool p: line 2: servers: "127.0.0.1:11211": want "host:port:weight [name]"`},
		{"zero weight", "p:\n  servers: ['127.0.0.1:11211:0']\n", `weight "0" must be a whole number above 0`},
		{"weight too big", "p:\n  servers: ['127.0.0.1:11211:100000']\n", "has weight 100000; mcproxy's weights are 1..1000"},
		{"bad bool", "p:\n  auto_eject_hosts: yes\n  servers: ['127.0.0.1:11211:1']\n", `auto_eject_hosts: "yes" is not true or false`},
		{"unknown hash", "p:\n  hash: sha1\n  servers: ['127.0.0.1:11211:1']\n", `unknown hash "sha1"`},
		{"unknown distribution", "p:\n  distribution: jump\n  servers: ['127.0.0.1:11211:1']\n", `unknown distribution "jump"`},
		{"only redis", "p:\n  redis: true\n  servers: ['127.0.0.1:6379:1']\n", "no memcached pool"},
		{"rejected by mcproxy", "p:\n  servers: ['127.0.0.1:11211:1 a', '127.0.0.1:11212:1 a']\n", "the converted config does not load"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert([]byte(tc.in), "n.yml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Convert: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
