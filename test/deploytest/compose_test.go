// Package deploytest checks that the deployment files agree with each other
// and with the code: docker-compose.yml, the Dockerfile, configs/docker.yaml,
// the Kubernetes manifests, the systemd unit, the Grafana dashboard and the
// Prometheus rules. Docker and Kubernetes are not needed: the files are
// parsed and compared, and where a real process can stand in for the
// container (config reload through the mounted directory, the ConfigMap
// symlink layout, /metrics) one is started.
package deploytest

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Paths relative to this package's directory (go test runs tests there).
const (
	repoRoot    = "../.."
	composePath = "../../docker-compose.yml"
	dockerfile  = "../../Dockerfile"
	dockerYAML  = "../../configs/docker.yaml"
	goModPath   = "../../go.mod"

	proxyService   = "mcproxy"
	memcachedImage = "memcached"
	memcachedPort  = 11211 // memcached's default -p
)

// proxyConfig is the part of configs/docker.yaml this test needs. It is parsed
// here on purpose instead of with internal/config, so that this test checks
// the file as an operator reads it.
type proxyConfig struct {
	Listen   string      `yaml:"listen"`
	Admin    string      `yaml:"admin"`
	Backends []yaml.Node `yaml:"backends"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

// composeService holds the fields we check; those with a short and a long
// syntax in the compose spec are kept as nodes and decoded by helpers below.
type composeService struct {
	Image     string      `yaml:"image"`
	Build     yaml.Node   `yaml:"build"`
	Command   yaml.Node   `yaml:"command"`
	Ports     []yaml.Node `yaml:"ports"`
	Expose    []yaml.Node `yaml:"expose"`
	Volumes   []yaml.Node `yaml:"volumes"`
	DependsOn yaml.Node   `yaml:"depends_on"`

	Healthcheck     yaml.Node `yaml:"healthcheck"`
	StopGracePeriod string    `yaml:"stop_grace_period"`
}

// portMapping is one entry of a service's ports list.
type portMapping struct {
	HostIP    string
	Published int // 0 when the host port is chosen by Docker
	Target    int
	Protocol  string
}

// mount is one entry of a service's volumes list.
type mount struct {
	Source, Target string
	ReadOnly       bool
}

// dockerImage is what the final stage of the Dockerfile says.
type dockerImage struct {
	Entrypoint  []string
	Cmd         []string
	Healthcheck []string        // the exec form after HEALTHCHECK ... CMD
	Args        map[string]bool // ARG names declared in the final build stage or before
	BuildArgs   map[string]bool // ARG names declared in the golang build stage
	Expose      map[int]bool
	Copies      [][]string // COPY arguments without flags, e.g. [configs/docker.yaml /etc/...]
	BuilderGo   string     // Go version of the golang builder image, e.g. "1.23"
	Bases       []string   // every FROM image, ARGs expanded
}

func TestComposeMatchesDockerConfig(t *testing.T) {
	cfg := loadProxyConfig(t)
	compose := loadCompose(t)
	img := loadDockerfile(t)

	proxy, ok := compose.Services[proxyService]
	if !ok {
		t.Fatalf("docker-compose.yml: no %q service (services: %s)", proxyService, serviceNames(compose))
	}

	t.Run("backends are memcached services", func(t *testing.T) {
		backends := backendAddrs(t, cfg)
		if len(backends) == 0 {
			t.Fatalf("configs/docker.yaml: no backends")
		}
		deps := dependsOn(t, proxy.DependsOn)
		for _, addr := range backends {
			host, portStr, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("configs/docker.yaml: backend %q is not host:port: %v", addr, err)
				continue
			}
			port, _ := strconv.Atoi(portStr)
			svc, ok := compose.Services[host]
			if !ok {
				t.Errorf("configs/docker.yaml: backend %q: docker-compose.yml has no service %q (services: %s)",
					addr, host, serviceNames(compose))
				continue
			}
			if !isMemcachedImage(svc.Image) {
				t.Errorf("docker-compose.yml: service %q (backend %q) has image %q, want a memcached image",
					host, addr, svc.Image)
			}
			listens := commandPort(t, host, svc.Command)
			if port != listens {
				t.Errorf("configs/docker.yaml: backend %q uses port %d, but service %q runs memcached on port %d",
					addr, port, host, listens)
			}
			if len(svc.Expose) > 0 && !contains(exposed(t, host, svc.Expose), listens) {
				t.Errorf("docker-compose.yml: service %q exposes %v, not memcached's port %d",
					host, exposed(t, host, svc.Expose), listens)
			}
			if !deps[host] {
				t.Errorf("docker-compose.yml: service %q does not depend_on backend service %q", proxyService, host)
			}
		}
	})

	t.Run("config directory is mounted where -config reads it", func(t *testing.T) {
		cfgPath := proxyConfigPath(t, proxy, img)
		m, rel := configMount(t, proxy, cfgPath)
		if m.Target == cfgPath {
			t.Fatalf("docker-compose.yml: service %q bind-mounts the file %s; mount its directory instead "+
				"(a single-file mount hides in-place edits and keeps the old file after an editor's rename, so live reload never sees them)",
				proxyService, cfgPath)
		}
		if got := filepath.Clean(filepath.Join(repoRoot, m.Source, rel)); got != filepath.Clean(dockerYAML) {
			t.Errorf("docker-compose.yml: service %q reads %s from %s, want ./configs/docker.yaml", proxyService, cfgPath, got)
		}
		if !m.ReadOnly {
			t.Errorf("docker-compose.yml: service %q should mount %s read-only (:ro)", proxyService, m.Target)
		}
		imgCfg := flagValue(append(append([]string{}, img.Entrypoint...), img.Cmd...), "config")
		copied := false
		for _, c := range img.Copies {
			if len(c) == 2 && path.Clean(c[0]) == "configs/docker.yaml" && c[1] == imgCfg {
				copied = true
			}
		}
		if imgCfg == "" || !copied {
			t.Errorf("Dockerfile: final stage should COPY configs/docker.yaml to the -config path of its ENTRYPOINT/CMD (%q)", imgCfg)
		}
	})

	t.Run("published ports match listen and admin", func(t *testing.T) {
		var ports []portMapping
		for _, n := range proxy.Ports {
			ports = append(ports, parsePort(t, n))
		}
		for _, l := range []struct{ key, addr string }{{"listen", cfg.Listen}, {"admin", cfg.Admin}} {
			host, portStr, err := net.SplitHostPort(l.addr)
			if err != nil {
				t.Errorf("configs/docker.yaml: %s %q is not host:port: %v", l.key, l.addr, err)
				continue
			}
			port, _ := strconv.Atoi(portStr)
			if host != "" && host != "0.0.0.0" && host != "::" {
				t.Errorf("configs/docker.yaml: %s %q binds %s; in a container it must bind all interfaces (0.0.0.0) to be reachable through a published port",
					l.key, l.addr, host)
			}
			if !img.Expose[port] {
				t.Errorf("Dockerfile: EXPOSE does not list %d, the %s port of configs/docker.yaml", port, l.key)
			}
			var pm *portMapping
			for i := range ports {
				if ports[i].Target == port && ports[i].Protocol == "tcp" {
					pm = &ports[i]
				}
			}
			if pm == nil {
				t.Errorf("docker-compose.yml: service %q does not publish container port %d (%s in configs/docker.yaml); ports: %+v",
					proxyService, port, l.key, ports)
				continue
			}
			if pm.Published != port {
				t.Errorf("docker-compose.yml: service %q publishes container port %d on host port %d; want the same port %d, so clients use the usual address",
					proxyService, port, pm.Published, port)
			}
		}
	})

	t.Run("mcproxy is built from this repository", func(t *testing.T) {
		ctx := ""
		switch proxy.Build.Kind {
		case yaml.ScalarNode:
			ctx = proxy.Build.Value
		case yaml.MappingNode:
			var b struct {
				Context string `yaml:"context"`
			}
			if err := proxy.Build.Decode(&b); err != nil {
				t.Fatalf("docker-compose.yml: %s.build: %v", proxyService, err)
			}
			ctx = b.Context
		default:
			t.Fatalf("docker-compose.yml: service %q has no build section", proxyService)
		}
		if filepath.Clean(filepath.Join(repoRoot, ctx)) != filepath.Clean(repoRoot) {
			t.Errorf("docker-compose.yml: service %q builds from %q, want the repository root (.)", proxyService, ctx)
		}
	})

	t.Run("builder Go is new enough for go.mod", func(t *testing.T) {
		want := goModVersion(t)
		if img.BuilderGo == "" {
			t.Fatalf("Dockerfile builder is not a golang:<version> image; cannot compare with go.mod")
		}
		if compareVersions(img.BuilderGo, want) < 0 {
			t.Errorf("Dockerfile: builder image has Go %s, but go.mod says go %s (raise GO_VERSION)", img.BuilderGo, want)
		}
	})

	// A toolchain line newer than the Go at hand makes every build
	// download that toolchain first (GOTOOLCHAIN=auto), and fail offline:
	// go.mod names none, only the oldest Go that builds (its go line).
	t.Run("go.mod forces no toolchain download", func(t *testing.T) {
		m := toolchainDirective.FindStringSubmatch(readGoMod(t))
		if m == nil {
			return
		}
		here := strings.TrimPrefix(runtime.Version(), "go")
		if compareVersions(here, m[1]) < 0 || compareVersions(img.BuilderGo, m[1]) < 0 {
			t.Errorf("go.mod: toolchain go%s is newer than this Go (%s) or the Dockerfile's (%s): every build would download it", m[1], here, img.BuilderGo)
		}
	})
}

func loadProxyConfig(t *testing.T) proxyConfig {
	t.Helper()
	var cfg proxyConfig
	decodeFile(t, dockerYAML, yaml.Unmarshal, &cfg)
	if cfg.Listen == "" || cfg.Admin == "" {
		t.Fatalf("configs/docker.yaml: want listen and admin addresses, got listen=%q admin=%q", cfg.Listen, cfg.Admin)
	}
	return cfg
}

// backendAddrs accepts each backend as "host:port" or as a mapping with an addr key.
func backendAddrs(t *testing.T, cfg proxyConfig) []string {
	t.Helper()
	var addrs []string
	for i, n := range cfg.Backends {
		switch n.Kind {
		case yaml.ScalarNode:
			addrs = append(addrs, n.Value)
		case yaml.MappingNode:
			var b struct {
				Addr string `yaml:"addr"`
			}
			if err := n.Decode(&b); err != nil {
				t.Fatalf("configs/docker.yaml: backends[%d] (line %d): %v", i, n.Line, err)
			}
			if b.Addr == "" {
				t.Fatalf("configs/docker.yaml: backends[%d] (line %d) has no addr key; if the key was renamed, update this test",
					i, n.Line)
			}
			addrs = append(addrs, b.Addr)
		default:
			t.Fatalf("configs/docker.yaml: backends[%d] (line %d) is neither host:port nor a mapping", i, n.Line)
		}
	}
	return addrs
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeFile(t, composePath, yaml.Unmarshal, &c)
	if len(c.Services) == 0 {
		t.Fatalf("docker-compose.yml: no services")
	}
	return c
}

func serviceNames(c composeFile) string {
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// isMemcachedImage: memcached, memcached:1.6-alpine, docker.io/library/memcached:1.6, ...
func isMemcachedImage(image string) bool {
	name := image
	if i := strings.IndexAny(name, ":@"); i >= 0 && !strings.Contains(name[i:], "/") {
		name = name[:i]
	}
	return path.Base(name) == memcachedImage
}

// commandPort returns the TCP port memcached listens on for a service command:
// the -p/--port argument, else memcached's default.
func commandPort(t *testing.T, svc string, n yaml.Node) int {
	t.Helper()
	args := commandArgs(t, svc, n)
	for i, a := range args {
		var v string
		switch {
		case (a == "-p" || a == "--port") && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(a, "--port="):
			v = strings.TrimPrefix(a, "--port=")
		case strings.HasPrefix(a, "-p") && len(a) > 2:
			v = a[2:]
		default:
			continue
		}
		p, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("docker-compose.yml: service %q: bad memcached port %q in command", svc, v)
		}
		return p
	}
	return memcachedPort
}

func commandArgs(t *testing.T, svc string, n yaml.Node) []string {
	t.Helper()
	switch n.Kind {
	case 0:
		return nil
	case yaml.ScalarNode:
		return strings.Fields(n.Value)
	case yaml.SequenceNode:
		var args []string
		if err := n.Decode(&args); err != nil {
			t.Fatalf("docker-compose.yml: service %q: command: %v", svc, err)
		}
		return args
	}
	t.Fatalf("docker-compose.yml: service %q: command is neither a string nor a list", svc)
	return nil
}

func exposed(t *testing.T, svc string, nodes []yaml.Node) []int {
	t.Helper()
	var ports []int
	for _, n := range nodes {
		v := strings.TrimSuffix(n.Value, "/tcp")
		p, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("docker-compose.yml: service %q: expose entry %q is not a TCP port", svc, n.Value)
		}
		ports = append(ports, p)
	}
	return ports
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// dependsOn accepts the list form and the map form of depends_on.
func dependsOn(t *testing.T, n yaml.Node) map[string]bool {
	t.Helper()
	deps := map[string]bool{}
	switch n.Kind {
	case 0:
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			t.Fatalf("docker-compose.yml: %s.depends_on: %v", proxyService, err)
		}
		for _, s := range names {
			deps[s] = true
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			deps[n.Content[i].Value] = true
		}
	default:
		t.Fatalf("docker-compose.yml: %s.depends_on is neither a list nor a map", proxyService)
	}
	return deps
}

// parsePort accepts "[[host_ip:]published:]target[/proto]" and the long form.
func parsePort(t *testing.T, n yaml.Node) portMapping {
	t.Helper()
	pm := portMapping{Protocol: "tcp"}
	if n.Kind == yaml.MappingNode {
		var long struct {
			Target    int    `yaml:"target"`
			Published string `yaml:"published"`
			HostIP    string `yaml:"host_ip"`
			Protocol  string `yaml:"protocol"`
		}
		if err := n.Decode(&long); err != nil {
			t.Fatalf("docker-compose.yml: %s.ports (line %d): %v", proxyService, n.Line, err)
		}
		pm.Target, pm.HostIP = long.Target, long.HostIP
		if long.Protocol != "" {
			pm.Protocol = long.Protocol
		}
		if long.Published != "" {
			pm.Published = atoiOrFatal(t, long.Published, n.Line)
		}
		return pm
	}
	s := n.Value
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s, pm.Protocol = s[:i], s[i+1:]
	}
	// An IPv6 host_ip is bracketed: "[::1]:11211:11211".
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			t.Fatalf("docker-compose.yml: %s.ports: cannot parse %q", proxyService, n.Value)
		}
		pm.HostIP, s = s[1:end], s[end+2:]
	}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		pm.Target = atoiOrFatal(t, parts[0], n.Line)
	case 2:
		pm.Published = atoiOrFatal(t, parts[0], n.Line)
		pm.Target = atoiOrFatal(t, parts[1], n.Line)
	case 3:
		pm.HostIP = parts[0]
		if parts[1] != "" {
			pm.Published = atoiOrFatal(t, parts[1], n.Line)
		}
		pm.Target = atoiOrFatal(t, parts[2], n.Line)
	default:
		t.Fatalf("docker-compose.yml: %s.ports: cannot parse %q", proxyService, n.Value)
	}
	return pm
}

func atoiOrFatal(t *testing.T, s string, line int) int {
	t.Helper()
	p, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("docker-compose.yml line %d: %q is not a single port number (ranges are not supported here)", line, s)
	}
	return p
}

// parseMount accepts "source:target[:mode]" and the long form.
func parseMount(t *testing.T, n yaml.Node) mount {
	t.Helper()
	if n.Kind == yaml.MappingNode {
		var long struct {
			Source   string `yaml:"source"`
			Target   string `yaml:"target"`
			ReadOnly bool   `yaml:"read_only"`
		}
		if err := n.Decode(&long); err != nil {
			t.Fatalf("docker-compose.yml: %s.volumes (line %d): %v", proxyService, n.Line, err)
		}
		return mount{Source: long.Source, Target: long.Target, ReadOnly: long.ReadOnly}
	}
	parts := strings.Split(n.Value, ":")
	switch len(parts) {
	case 1:
		return mount{Target: parts[0]} // anonymous volume
	case 2:
		return mount{Source: parts[0], Target: parts[1]}
	default:
		m := mount{Source: parts[0], Target: parts[1]}
		for _, opt := range strings.Split(parts[2], ",") {
			if opt == "ro" {
				m.ReadOnly = true
			}
		}
		return m
	}
}

// flagValue finds "-name value", "--name value", "-name=value" in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name && i+1 < len(args) && len(args[i]) > len(a) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok && len(args[i]) > len(a) {
			return v
		}
	}
	return ""
}

var goImage = regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)`)

// loadDockerfile reads the instructions of the Dockerfile's final stage, the
// ARG defaults declared before the first FROM, and the Go version of a golang
// builder stage.
func loadDockerfile(t *testing.T) dockerImage {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	defer f.Close()

	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}

	globalArgs := map[string]string{}
	var img dockerImage
	seenFrom := false
	for _, line := range lines {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			if !seenFrom {
				globalArgs[k] = strings.Trim(v, `"`)
			} else {
				img.Args[k] = true
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &img.Cmd); err != nil {
				t.Fatalf("Dockerfile: CMD %s is not in exec (JSON) form: %v", rest, err)
			}
		case "HEALTHCHECK":
			_, execForm, ok := strings.Cut(rest, "CMD ")
			if !ok || json.Unmarshal([]byte(strings.TrimSpace(execForm)), &img.Healthcheck) != nil {
				t.Fatalf("Dockerfile: HEALTHCHECK %s: want CMD in exec (JSON) form (distroless has no shell)", rest)
			}
		case "FROM":
			seenFrom = true
			base := strings.Fields(rest)[0]
			base = os.Expand(base, func(k string) string { return globalArgs[k] })
			img.Bases = append(img.Bases, base)
			if img.Args != nil && goImage.MatchString(img.Bases[len(img.Bases)-2]) {
				img.BuildArgs = img.Args // the stage just ended was the Go build
			}
			if m := goImage.FindStringSubmatch(base); m != nil {
				img.BuilderGo = m[1]
			}
			// A new stage: only the final one's instructions count.
			img.Entrypoint, img.Cmd, img.Healthcheck, img.Expose, img.Copies = nil, nil, nil, map[int]bool{}, nil
			img.Args = map[string]bool{}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.Entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %s is not in exec (JSON) form: %v", rest, err)
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err == nil {
					img.Expose[n] = true
				}
			}
		case "COPY":
			var args []string
			for _, a := range strings.Fields(rest) {
				if !strings.HasPrefix(a, "--") {
					args = append(args, a)
				}
			}
			img.Copies = append(img.Copies, args)
		}
	}
	if !seenFrom {
		t.Fatalf("Dockerfile: no FROM")
	}
	if len(img.Entrypoint) == 0 {
		t.Fatalf("Dockerfile: final stage has no ENTRYPOINT")
	}
	return img
}

var goDirective = regexp.MustCompile(`(?m)^go\s+(\d+\.\d+(?:\.\d+)?)\s*$`)

func goModVersion(t *testing.T) string {
	t.Helper()
	return goModMatch(t, goDirective, "no go directive")
}

// compareVersions compares dotted versions; "1.23" counts as "1.23.0", and an
// image tag "1.23" (the newest 1.23.x) satisfies go.mod's "1.23.4".
func compareVersions(image, mod string) int {
	a, b := strings.Split(image, "."), strings.Split(mod, ".")
	for i := 0; i < len(b); i++ {
		if i >= len(a) {
			return 0 // image tag is less specific: it tracks the newest patch
		}
		x, _ := strconv.Atoi(a[i])
		y, _ := strconv.Atoi(b[i])
		if x != y {
			return x - y
		}
	}
	return 0
}

var toolchainDirective = regexp.MustCompile(`(?m)^toolchain\s+go(\d+\.\d+(?:\.\d+)?)\s*$`)

func readGoMod(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(goModPath)
	if err != nil {
		t.Fatalf("read go.mod: %v", err)
	}
	return string(data)
}

// goModMatch returns the first group of re's match in go.mod, failing t
// with missing when there is none.
func goModMatch(t *testing.T, re *regexp.Regexp, missing string) string {
	t.Helper()
	m := re.FindStringSubmatch(readGoMod(t))
	if m == nil {
		t.Fatalf("go.mod: %s", missing)
	}
	return m[1]
}

// decodeFile reads the file at path and decodes it into v with unmarshal
// (yaml's or json's), failing t when it cannot.
func decodeFile(t *testing.T, path string, unmarshal func([]byte, any) error, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := unmarshal(data, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}
