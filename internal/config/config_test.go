package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// fullYAML sets every key to a value other than its default.
const fullYAML = `
listen: 0.0.0.0:12000
admin: 127.0.0.1:9999
reuse_port: true
upgrade_socket: /run/mcproxy/upgrade.sock
pprof: true
disable_flush_all: true
event_loops: 3
replicas: 2
zone: eu-1a
backends:
  - addr: 10.0.0.1:11211
    weight: 3
    name: cache-a
    zone: eu-1a
  - 10.0.0.2:11211
  - addr: "[::1]:11213"
ring:
  partitions: 10007
  replication_factor: 40
  load: 1.5
health:
  interval: 2s
  timeout: 750ms
  failure_limit: 5
  success_limit: 4
  auto_eject: false
  flush_on_readd: false
  max_ejected: 1
backend:
  connections: 8
  timeout: 250ms
  connect_timeout: 2s
  tls:
    enabled: true
    ca_file: testdata/tls/ca.crt
    cert_file: testdata/tls/server.crt
    key_file: testdata/tls/server.key
    server_name: localhost
    min_version: "1.3"
limits:
  max_connections: 500
  max_item_size: 2m
  client_idle_timeout: 5m
  client_output_limit: 256m
  reqs_per_event: 50
  read_bytes_per_event: 1m
failover:
  ttl: 10s
tls:
  listen: 0.0.0.0:12001
  cert_file: testdata/tls/server.crt
  key_file: testdata/tls/server.key
  client_ca_file: testdata/tls/ca.crt
  min_version: "1.3"
  handshake_timeout: 2s
`

func fullConfig() Config {
	return Config{
		Listen:        "0.0.0.0:12000",
		Admin:         "127.0.0.1:9999",
		ReusePort:     true,
		UpgradeSocket: "/run/mcproxy/upgrade.sock",
		Pprof:         true,

		DisableFlushAll: true,
		EventLoops:      3,
		Replicas:        2,
		Zone:            "eu-1a",
		Backends: []Backend{
			{Name: "cache-a", Addr: "10.0.0.1:11211", Weight: 3, Zone: "eu-1a"},
			{Addr: "10.0.0.2:11211", Weight: 1},
			{Addr: "[::1]:11213", Weight: 1},
		},
		Ring: Ring{Partitions: 10007, ReplicationFactor: 40, Load: 1.5},
		Health: Health{Interval: 2 * time.Second, Timeout: 750 * time.Millisecond, FailureLimit: 5, SuccessLimit: 4, AutoEject: false, FlushOnReadd: false,
			MaxEjected: "1"},
		Backend: BackendOptions{Connections: 8, Timeout: 250 * time.Millisecond, ConnectTimeout: 2 * time.Second,
			TLS: BackendTLS{Enabled: true, CAFile: "testdata/tls/ca.crt", CertFile: "testdata/tls/server.crt",
				KeyFile: "testdata/tls/server.key", ServerName: "localhost", MinVersion: "1.3"}},
		Limits:   Limits{MaxConnections: 500, MaxItemSize: 2 << 20, ClientIdleTimeout: 5 * time.Minute, ClientOutputLimit: 256 << 20, ReqsPerEvent: 50, ReadBytesPerEvent: 1 << 20},
		Failover: Failover{TTL: 10 * time.Second},
		TLS: TLS{Listen: "0.0.0.0:12001", CertFile: "testdata/tls/server.crt", KeyFile: "testdata/tls/server.key",
			ClientCAFile: "testdata/tls/ca.crt", MinVersion: "1.3", HandshakeTimeout: 2 * time.Second},
	}
}

// writeFile puts content in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFullFile(t *testing.T) {
	path := writeFile(t, "full.yaml", fullYAML)
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := fullConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	if d := Diff(got, Default()); len(d) != len(structKeys(reflect.TypeOf(Config{}), ""))+1 {
		// +1: Default has no backends; every other key differs by construction.
		t.Errorf("fullYAML should set every key to a non-default value; differs from Default only in %v", d)
	}
}

// TestFullFileCoversEveryKey keeps fullYAML, the struct tags and the parser
// in step: every key of the types is in the file, and the file parses.
func TestFullFileCoversEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(fullYAML), &doc); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if prefix == "" && k == "backends" {
				inFile = append(inFile, "backends.addr", "backends.name", "backends.weight")
				continue
			}
			if v.Kind == yaml.MappingNode {
				walk(v, prefix+k+".")
				continue
			}
			inFile = append(inFile, prefix+k)
		}
	}
	walk(doc.Content[0], "")
	sort.Strings(inFile)
	want := append(structKeys(reflect.TypeOf(Config{}), ""), "backends.addr", "backends.name", "backends.weight")
	sort.Strings(want)
	if !slices.Equal(inFile, want) {
		t.Errorf("keys in fullYAML:\n %v\nkeys of Config:\n %v", inFile, want)
	}
}

// structKeys lists the dotted yaml keys of the leaf fields of t, except
// the lists: backends, and pools and routes (which pools_test.go covers).
func structKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		switch {
		case name == "backends", name == "pools", name == "routes":
		case f.Type.Kind() == reflect.Struct:
			keys = append(keys, structKeys(f.Type, prefix+name+".")...)
		default:
			keys = append(keys, prefix+name)
		}
	}
	return keys
}

func TestDefaultsApplied(t *testing.T) {
	cfg, err := Parse([]byte("backends:\n  - addr: 127.0.0.1:11311\n"), "min.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.Backends = []Backend{{Addr: "127.0.0.1:11311", Weight: 1}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
	// The documented defaults.
	d := Default()
	if d.Listen != "127.0.0.1:11211" || d.Admin != "" || d.Pprof || d.Backends != nil ||
		d.Ring != (Ring{7919, 160, 1.25}) ||
		d.Health != (Health{time.Second, 500 * time.Millisecond, 3, 2, true, true, "50%"}) ||
		d.Backend != (BackendOptions{1, time.Second, 500 * time.Millisecond, BackendTLS{MinVersion: "1.2"}}) ||
		d.TLS != (TLS{MinVersion: "1.2", HandshakeTimeout: 5 * time.Second}) ||
		d.Limits != (Limits{10000, 1 << 20, 0, 64 << 20, 20, 256 << 10}) {
		t.Errorf("Default() = %+v", d)
	}
}

func TestPartialSectionsKeepOtherDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
backends: [a:1]
health: {interval: 5s}
admin:            # empty value: default
limits:
  max_item_size: 4096
`), "partial.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.Backends = []Backend{{Addr: "a:1", Weight: 1}}
	want.Health.Interval = 5 * time.Second
	want.Limits.MaxItemSize = 4096
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestShorthandBackends(t *testing.T) {
	cfg, err := Parse([]byte(`
backends:
  - 127.0.0.1:11311
  - addr: 127.0.0.1:11312
    weight: 2
  - "memcached-3:11211"
  - addr: host-4:11211
`), "short.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Backend{
		{Addr: "127.0.0.1:11311", Weight: 1},
		{Addr: "127.0.0.1:11312", Weight: 2},
		{Addr: "memcached-3:11211", Weight: 1},
		{Addr: "host-4:11211", Weight: 1},
	}
	if !reflect.DeepEqual(cfg.Backends, want) {
		t.Errorf("backends = %+v, want %+v", cfg.Backends, want)
	}
}

func TestAliasesAreFollowed(t *testing.T) {
	cfg, err := Parse([]byte(`
backends:
  - &first 10.0.0.1:11211
ring: &ring {partitions: 101}
health:
  interval: &iv 3s
  timeout: *iv
`), "alias.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Ring.Partitions != 101 || cfg.Health.Timeout != 3*time.Second || cfg.Backends[0].Addr != "10.0.0.1:11211" {
		t.Errorf("got %+v", cfg)
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "backends: [127.0.0.1:11311]\n"
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"unknown nested key with its line", ok + "health:\n  interval: 1s\n  intervall: 2s\n",
			[]string{`line 4: unknown key "health.intervall"`}},
		{"unknown top key", "listn: :1\n" + ok, []string{`line 1: unknown key "listn"`}},
		{"unknown backend key", "backends:\n  - addr: a:1\n    wieght: 2\n", []string{`line 3: unknown key "backends[0].wieght"`}},
		{"bad duration", ok + "health:\n  interval: 1 sec\n", []string{`line 3: health.interval: want a duration`, `"1 sec"`}},
		{"duration without unit", ok + "backend:\n  timeout: 5\n", []string{`line 3: backend.timeout: 5 has no unit`}},
		{"zero duration", ok + "backend:\n  connect_timeout: 0\n", []string{"backend.connect_timeout: 0s must be greater than 0"}},
		{"negative idle timeout", ok + "limits: {client_idle_timeout: -1s}\n", []string{"limits.client_idle_timeout: -1s must not be negative"}},
		{"weight 0", "backends:\n  - a:1\n  - b:1\n  - addr: c:1\n    weight: 0\n", []string{"line 5: backends[2].weight: 0 is out of range 1..1000"}},
		{"weight 1001", "backends:\n  - addr: c:1\n    weight: 1001\n", []string{"backends[0].weight: 1001 is out of range 1..1000"}},
		{"weight wrong type", "backends:\n  - addr: c:1\n    weight: heavy\n", []string{`line 3: backends[0].weight: want a whole number, got "heavy"`}},
		{"duplicate addr", "backends:\n  - a:1\n  - b:1\n  - addr: a:1\n", []string{"line 4: backends[2].addr: a:1 duplicates backends[0].addr"}},
		{"duplicate addr normalized", "backends: ['[::ffff:10.0.0.1]:11211', 'Host:1', '10.0.0.1:11211', host:01]\n",
			[]string{"backends[2].addr: 10.0.0.1:11211 duplicates backends[0].addr", "backends[3].addr: host:01 duplicates backends[1].addr"}},
		{"bad port", "backends: [a:http]\n", []string{`backends[0].addr: "a:http": port "http" must be a number 1..65535`}},
		{"port 0", "backends: [a:0]\n", []string{`backends[0].addr: "a:0": port "0" must be`}},
		{"port too big", ok + "listen: :65536\n", []string{`line 2: listen: ":65536": port "65536" must be`}},
		{"no port", "backends: [memcached-1]\n", []string{`backends[0].addr: "memcached-1" is not host:port: missing port in address`}},
		{"empty backend host", "backends: [':11211']\n", []string{`backends[0].addr: ":11211": the host must not be empty`}},
		{"backend without addr", "backends:\n  - weight: 2\n", []string{"line 2: backends[0].addr: required"}},
		{"empty backend entry", "backends:\n  -\n", []string{"backends[0]: empty entry"}},
		{"bad admin", ok + "admin: localhost\n", []string{`line 2: admin: "localhost" is not host:port`}},
		{"empty listen", ok + "listen: ''\n", []string{"listen: must not be empty"}},
		{"pprof without admin", ok + "pprof: true\n", []string{"pprof: true needs admin"}},
		{"upgrade socket without reuse_port", ok + "upgrade_socket: /run/u.sock\n", []string{"upgrade_socket: needs reuse_port: true"}},
		{"relative upgrade socket", ok + "reuse_port: true\nupgrade_socket: u.sock\n", []string{`line 3: upgrade_socket: "u.sock" must be an absolute path`}},
		{"long upgrade socket", ok + "reuse_port: true\nupgrade_socket: /" + strings.Repeat("u", 107) + "\n", []string{"upgrade_socket: ", "a Unix socket path holds at most 107"}},
		{"reuse_port yes", ok + "reuse_port: yes\n", []string{`line 2: reuse_port: want true or false, got "yes"`}},
		{"pprof yes", ok + "admin: :9\npprof: yes\n", []string{`line 3: pprof: want true or false, got "yes"`}},
		{"no backends", "listen: :11211\n", []string{"backends: at least one backend is required"}},
		{"empty backend list", "backends: []\n", []string{"line 1: backends: at least one backend is required"}},
		{"empty file", "", []string{"backends: at least one backend is required"}},
		{"comments only", "# nothing\n", []string{"backends: at least one backend is required"}},
		{"backends not a list", "backends: a:1\n", []string{`line 1: backends: want a list of backends, got "a:1"`}},
		{"section not a mapping", ok + "ring: 5\n", []string{"line 2: ring: want a mapping of keys, got 5"}},
		{"top level not a mapping", "- a\n- b\n", []string{"the file must be a mapping of keys"}},
		{"load 0.5", ok + "ring: {load: 0.5}\n", []string{"line 2: ring.load: 0.5 must be a finite number >= 1.0"}},
		{"load inf", ok + "ring: {load: .inf}\n", []string{"ring.load: +Inf must be a finite number"}},
		{"load string", ok + "ring: {load: high}\n", []string{`ring.load: want a number such as 1.25, got "high"`}},
		{"partitions 0", ok + "ring: {partitions: 0}\n", []string{"ring.partitions: 0 is out of range 1..1048576"}},
		{"replication_factor too big", ok + "ring: {replication_factor: 1001}\n", []string{"ring.replication_factor: 1001 is out of range 1..1000"}},
		{"quoted integer", ok + "ring: {partitions: '7919'}\n", []string{`ring.partitions: want a whole number, got "7919"`}},
		{"timeout > interval", ok + "health:\n  interval: 1s\n  timeout: 2s\n", []string{"line 4: health.timeout: 2s exceeds health.interval 1s"}},
		{"default timeout > interval", ok + "health: {interval: 100ms}\n", []string{"health.timeout: 500ms exceeds health.interval 100ms"}},
		{"failure_limit 0", ok + "health: {failure_limit: 0}\n", []string{"health.failure_limit: 0 is out of range 1..1000"}},
		{"success_limit 1001", ok + "health: {success_limit: 1001}\n", []string{"health.success_limit: 1001 is out of range 1..1000"}},
		{"connections 65", ok + "backend: {connections: 65}\n", []string{"backend.connections: 65 is out of range 1..64"}},
		{"max_connections 0", ok + "limits: {max_connections: 0}\n", []string{"limits.max_connections: 0 is out of range 1..1000000"}},
		{"max_item_size 3x", ok + "limits:\n  max_item_size: 3x\n", []string{`line 3: limits.max_item_size: want a size in bytes`, `"3x"`}},
		{"max_item_size 512", ok + "limits: {max_item_size: 512}\n", []string{"line 2: limits.max_item_size: 512 is out of range 1k..1024m"}},
		{"max_item_size 2g", ok + "limits: {max_item_size: 2048m}\n", []string{"limits.max_item_size: 2048m is out of range"}},
		{"failover.ttl 0", ok + "failover: {ttl: 0}\n", []string{"line 2: failover.ttl: 0s is out of range 1s..24h0m0s"}},
		{"failover.ttl 25h", ok + "failover: {ttl: 25h}\n", []string{"failover.ttl: 25h0m0s is out of range 1s..24h0m0s"}},
		{"failover.ttl 1500ms", ok + "failover: {ttl: 1500ms}\n", []string{"failover.ttl: 1.5s must be whole seconds"}},
		{"max_item_size huge", ok + "limits: {max_item_size: 99999999999999999999}\n", []string{"limits.max_item_size:"}},
		{"max_ejected word", ok + "health: {max_ejected: half}\n", []string{`line 2: health.max_ejected: want a number of backends such as 1 or a share of the pool such as "50%", got "half"`}},
		{"max_ejected fraction", ok + "health: {max_ejected: 0.5}\n", []string{`health.max_ejected: want a number of backends`}},
		{"max_ejected negative", ok + "health: {max_ejected: -1}\n", []string{"line 2: health.max_ejected: -1 must not be negative"}},
		{"max_ejected 101%", ok + "health: {max_ejected: 101%}\n", []string{"health.max_ejected: 101% is out of range 0%..100%"}},
		{"max_ejected 1.5%", ok + "health: {max_ejected: 1.5%}\n", []string{`health.max_ejected: "1.5%" is not a number of backends`}},
		{"same server spelled twice", "backends:\n  - 127.0.0.1:11311\n  - a:1\n  - localhost:11311\n",
			[]string{"line 4: backends[2].addr: localhost:11311 resolves to the same server as backends[0].addr 127.0.0.1:11311"}},
		{"duplicate names", "backends:\n  - {name: a, addr: 'b:1'}\n  - {name: a, addr: 'c:1'}\n",
			[]string{"line 3: backends[1].name: a duplicates backends[0].name a"}},
		{"name is another's addr", "backends:\n  - b:1\n  - {name: 'b:1', addr: 'c:1'}\n",
			[]string{"backends[1].name: b:1 duplicates the name of backends[0], which is unnamed and so named by its addr b:1"}},
		{"addr is another's name", "backends:\n  - {name: 'c:1', addr: 'b:1'}\n  - c:1\n",
			[]string{"backends[1].addr: c:1, the name of this unnamed backend, duplicates backends[0].name c:1"}},
		{"name with a space", "backends:\n  - {name: 'cache a', addr: 'b:1'}\n",
			[]string{`backends[0].name: "cache a" must not contain spaces`}},
		{"name not a string", "backends:\n  - {name: [a], addr: 'b:1'}\n", []string{"backends[0].name: want a string, got a list"}},
		{"client_output_limit 512k", ok + "limits: {client_output_limit: 512k}\n", []string{"line 2: limits.client_output_limit: 512k is out of range 1m..4096m"}},
		{"client_output_limit 5g", ok + "limits: {client_output_limit: 5120m}\n", []string{"limits.client_output_limit: 5120m is out of range"}},
		{"client_output_limit 1x", ok + "limits: {client_output_limit: 1x}\n", []string{"limits.client_output_limit: want a size in bytes"}},
		{"reqs_per_event 0", ok + "limits: {reqs_per_event: 0}\n", []string{"line 2: limits.reqs_per_event: 0 is out of range 1..1048576"}},
		{"read_bytes_per_event 1k", ok + "limits: {read_bytes_per_event: 1k}\n", []string{"line 2: limits.read_bytes_per_event: 1k is out of range 16k..1024m"}},
		{"repeated key", ok + "listen: :1\nlisten: :2\n", []string{"line 3: listen: key repeated (first at line 2)"}},
		{"syntax error", "backends: [a:1\n", []string{"load config bad.yaml: line"}},
		{"two documents", ok + "---\nlisten: :1\n", []string{"one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "load config bad.yaml: ") {
				t.Errorf("error %q does not start with the file name", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain %q", msg, w)
				}
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	path := writeFile(t, "multi.yaml", `listen: localhost
backends:
  - addr: a:1
    weight: 0
  - a:1
health:
  intervall: 1s
  timeout: 3s
limits:
  max_item_size: 3x
`)
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	msg := err.Error()
	want := []string{
		"load config " + path + ": 6 problems:\n",
		`line 1: listen: "localhost" is not host:port`,
		"line 4: backends[0].weight: 0 is out of range 1..1000",
		"line 5: backends[1].addr: a:1 duplicates backends[0].addr a:1",
		`line 7: unknown key "health.intervall"`,
		"line 8: health.timeout: 3s exceeds health.interval 1s",
		"line 10: limits.max_item_size: want a size",
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error\n%s\ndoes not contain %q", msg, w)
		}
	}
	// One problem a line, in file order.
	lines := strings.Split(msg, "\n")
	if len(lines) != 7 {
		t.Errorf("want a heading and 6 lines, got %d:\n%s", len(lines), msg)
	}
	for i := 1; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "line ") {
			t.Errorf("line %d %q: want it to start with the file line", i, lines[i])
		}
	}
	// The problems are joined, so callers can still walk them.
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 6 {
		t.Errorf("want 6 joined errors, got %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "load config "+path+": ") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestLoadExampleConfigs(t *testing.T) {
	for _, path := range []string{"../../configs/local.yaml", "../../configs/docker.yaml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(cfg.Backends) != 3 {
				t.Errorf("want 3 backends, got %+v", cfg.Backends)
			}
			// The examples write out every default; only addresses differ.
			want := Default()
			want.Listen, want.Admin, want.Backends = cfg.Listen, cfg.Admin, cfg.Backends
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("example differs from the defaults in %v", Diff(cfg, want))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "backends: at least one backend is required") {
		t.Errorf("Default().Validate() = %v", err)
	}
	c.Backends = []Backend{{Addr: "a:1", Weight: 1}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	c.Limits.MaxItemSize = 100
	c.Limits.ClientOutputLimit = 0
	c.Backends[0].Weight = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "limits.max_item_size: 100 is out of range") ||
		!strings.Contains(err.Error(), "limits.client_output_limit: 0 is out of range 1m..4096m") ||
		!strings.Contains(err.Error(), "backends[0].weight: 0 is out of range") {
		t.Errorf("Validate = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "2097152": 2097152, "1k": 1024, "512K": 512 << 10,
		"1m": 1 << 20, "64M": 64 << 20, "1024m": 1 << 30,
	}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "3x", "1g", "1mb", "1.5m", "-1", " 1m", "1 m", "99999999999999999999m"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, b := range []int64{1, 1023, 1024, 1536, 1 << 20, 3 << 20, 1 << 30} {
		if got, err := parseSize(formatSize(b)); err != nil || got != b {
			t.Errorf("parseSize(formatSize(%d)=%q) = %d, %v", b, formatSize(b), got, err)
		}
	}
}

func TestDiff(t *testing.T) {
	base := fullConfig()
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"unchanged", func(c *Config) {}, []string{}},
		{"reordered backends", func(c *Config) {
			c.Backends = []Backend{c.Backends[2], c.Backends[0], c.Backends[1]}
		}, []string{}},
		{"changed weight", func(c *Config) { c.Backends[1].Weight = 7 }, []string{"backends"}},
		{"added backend", func(c *Config) {
			c.Backends = append(c.Backends, Backend{Addr: "10.0.0.9:11211", Weight: 1})
		}, []string{"backends"}},
		{"removed backend", func(c *Config) { c.Backends = c.Backends[1:] }, []string{"backends"}},
		{"replaced backend", func(c *Config) { c.Backends[0].Addr = "10.0.0.8:11211" }, []string{"backends"}},
		{"renamed backend", func(c *Config) { c.Backends[1].Name = "cache-b" }, []string{"backends"}},
		{"max_ejected", func(c *Config) { c.Health.MaxEjected = "2" }, []string{"health.max_ejected"}},
		{"listen", func(c *Config) { c.Listen = "0.0.0.0:1" }, []string{"listen"}},
		{"several, sorted", func(c *Config) {
			c.Ring.Load = 2
			c.Listen = ":1"
			c.Health.Interval = time.Minute
			c.Backends = c.Backends[:1]
		}, []string{"backends", "health.interval", "listen", "ring.load"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := fullConfig()
			tt.change(&next)
			if got := Diff(base, next); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
			if got := Diff(next, base); !slices.Equal(got, tt.want) {
				t.Errorf("Diff reversed = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDiffSeesEveryKey changes each leaf field in turn: Diff must name it.
// TestMaxEjectedForms: the two forms of health.max_ejected, and a name
// that only respells a backend's address.
func TestMaxEjectedForms(t *testing.T) {
	for in, want := range map[string][2]any{"0": {0, false}, "2": {2, false}, "'0%'": {0, true}, "50%": {50, true}, "100%": {100, true}} {
		cfg, err := Parse([]byte("backends: [a:1]\nhealth: {max_ejected: "+in+"}\n"), "t.yaml")
		if err != nil {
			t.Fatalf("max_ejected %s: %v", in, err)
		}
		n, pct, err := cfg.Health.MaxEjected.Parse()
		if err != nil || n != want[0] || pct != want[1] {
			t.Errorf("max_ejected %s: %d %v %v, want %v", in, n, pct, err, want)
		}
	}
	// A backend named by the address it had, now spelled otherwise.
	cfg, err := Parse([]byte("backends:\n  - {name: '127.0.0.1:11311', addr: 'localhost:11311'}\n  - 127.0.0.1:11312\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Backends[0]; b.Name != "127.0.0.1:11311" || b.Addr != "localhost:11311" {
		t.Errorf("backend: %+v", b)
	}
}

func TestDiffSeesEveryKey(t *testing.T) {
	keys := structKeys(reflect.TypeOf(Config{}), "")
	for _, key := range keys {
		next := Default()
		f := reflect.ValueOf(&next).Elem()
		for _, part := range strings.Split(key, ".") {
			f = fieldByTag(f, part)
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Float64:
			f.SetFloat(f.Float() + 1)
		default:
			t.Fatalf("%s: unhandled kind %s", key, f.Kind())
		}
		if got := Diff(Default(), next); !slices.Equal(got, []string{key}) {
			t.Errorf("changing %s: Diff = %q", key, got)
		}
	}
}

func fieldByTag(v reflect.Value, tag string) reflect.Value {
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("yaml") == tag {
			return v.Field(i)
		}
	}
	panic("no field " + tag)
}
