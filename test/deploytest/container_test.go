package deploytest

import (
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.yaml.in/yaml/v3"
)

const mainGo = "../../cmd/mcproxy/main.go"

// proxyConfigPath is the -config path mcproxy runs with under compose: the
// service's command if it has one, else the image's CMD, after the
// ENTRYPOINT.
func proxyConfigPath(t *testing.T, svc composeService, img dockerImage) string {
	t.Helper()
	args := append([]string{}, img.Entrypoint...)
	if cmd := commandArgs(t, proxyService, svc.Command); cmd != nil {
		args = append(args, cmd...)
	} else {
		args = append(args, img.Cmd...)
	}
	p := flagValue(args, "config")
	if p == "" {
		t.Fatalf("mcproxy's command line under compose (%q) has no -config flag", args)
	}
	return p
}

// configMount finds the mount of svc that holds the container path p, and p
// relative to the mount's target.
func configMount(t *testing.T, svc composeService, p string) (mount, string) {
	t.Helper()
	for _, v := range svc.Volumes {
		m := parseMount(t, v)
		if m.Target == p {
			return m, "."
		}
		if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.Target, "/")+"/"); ok && m.Target != "" {
			return m, rel
		}
	}
	t.Fatalf("docker-compose.yml: service %q mounts nothing that holds %s, its -config path", proxyService, p)
	return mount{}, ""
}

// healthTest returns a compose healthcheck's test as a command line: the
// exec form without "CMD", or ["sh", "-c", ...] for CMD-SHELL.
func healthTest(t *testing.T, svc string, n yaml.Node) []string {
	t.Helper()
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = *n.Alias // healthcheck: *memcached-health
	}
	if n.Kind != yaml.MappingNode {
		t.Fatalf("docker-compose.yml: service %q has no healthcheck", svc)
	}
	var hc struct {
		Test yaml.Node `yaml:"test"`
	}
	if err := n.Decode(&hc); err != nil {
		t.Fatalf("docker-compose.yml: %s.healthcheck: %v", svc, err)
	}
	var test []string
	switch hc.Test.Kind {
	case yaml.ScalarNode:
		return []string{"sh", "-c", hc.Test.Value}
	case yaml.SequenceNode:
		if err := hc.Test.Decode(&test); err != nil {
			t.Fatalf("docker-compose.yml: %s.healthcheck.test: %v", svc, err)
		}
	}
	switch {
	case len(test) >= 2 && test[0] == "CMD":
		return test[1:]
	case len(test) == 2 && test[0] == "CMD-SHELL":
		return []string{"sh", "-c", test[1]}
	}
	t.Fatalf("docker-compose.yml: %s.healthcheck.test %q: want [CMD, ...] or [CMD-SHELL, ...]", svc, test)
	return nil
}

// shutdownGrace reads mcproxy's drain grace from cmd/mcproxy/main.go, its
// one source.
func shutdownGrace(t *testing.T) time.Duration {
	t.Helper()
	src, err := os.ReadFile(mainGo)
	if err != nil {
		t.Fatalf("read %s: %v", mainGo, err)
	}
	m := regexp.MustCompile(`shutdownGrace\s*=\s*(\d+)\s*\*\s*time\.Second`).FindSubmatch(src)
	if m == nil {
		t.Fatalf("%s: cannot find `shutdownGrace = N * time.Second`; if it moved, update this test", mainGo)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return time.Duration(n) * time.Second
}

var (
	exactGoImage        = regexp.MustCompile(`^golang:\d+\.\d+\.\d+-[a-z]+$`)
	exactMemcachedImage = regexp.MustCompile(`^memcached:\d+\.\d+\.\d+-alpine$`)
)

func TestContainerOperations(t *testing.T) {
	cfg := loadProxyConfig(t)
	compose := loadCompose(t)
	img := loadDockerfile(t)
	proxy := compose.Services[proxyService]
	_, listenPort, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("configs/docker.yaml: listen %q: %v", cfg.Listen, err)
	}

	t.Run("images are pinned to exact versions", func(t *testing.T) {
		for _, base := range img.Bases {
			if strings.HasPrefix(base, "golang:") && !exactGoImage.MatchString(base) {
				t.Errorf("Dockerfile: FROM %s: pin the exact Go release, e.g. golang:1.26.8-bookworm", base)
			}
		}
		for name, svc := range compose.Services {
			if isMemcachedImage(svc.Image) && !exactMemcachedImage.MatchString(svc.Image) && !strings.Contains(svc.Image, "@sha256:") {
				t.Errorf("docker-compose.yml: service %q image %q floats; pin an exact release such as memcached:1.6.45-alpine", name, svc.Image)
			}
		}
	})

	t.Run("image health check probes the listen port", func(t *testing.T) {
		hc := img.Healthcheck
		if len(hc) < 3 || path.Base(hc[0]) != "mcproxy" || flagValue(hc, "probe") == "" {
			t.Fatalf("Dockerfile: HEALTHCHECK CMD %q, want [/mcproxy, -probe, 127.0.0.1:<listen port>]", hc)
		}
		if _, p, _ := net.SplitHostPort(flagValue(hc, "probe")); p != listenPort {
			t.Errorf("Dockerfile: HEALTHCHECK probes %s, but configs/docker.yaml listens on port %s", flagValue(hc, "probe"), listenPort)
		}
	})

	t.Run("compose health checks and start order", func(t *testing.T) {
		test := healthTest(t, proxyService, proxy.Healthcheck)
		if _, p, _ := net.SplitHostPort(flagValue(test, "probe")); path.Base(test[0]) != "mcproxy" || p != listenPort {
			t.Errorf("docker-compose.yml: %s.healthcheck %q, want mcproxy -probe on port %s", proxyService, test, listenPort)
		}
		var deps map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := proxy.DependsOn.Decode(&deps); err != nil {
			t.Fatalf("docker-compose.yml: %s.depends_on should be the long form with conditions: %v", proxyService, err)
		}
		for name, d := range deps {
			if d.Condition != "service_healthy" {
				t.Errorf("docker-compose.yml: %s.depends_on.%s.condition = %q, want service_healthy", proxyService, name, d.Condition)
			}
			svc := compose.Services[name]
			test := healthTest(t, name, svc.Healthcheck)
			cmd := strings.Join(test, " ")
			if port := strconv.Itoa(commandPort(t, name, svc.Command)); !strings.Contains(cmd, port) || !strings.Contains(cmd, "VERSION") {
				t.Errorf("docker-compose.yml: %s.healthcheck %q should ask memcached's port %s for its VERSION", name, test, port)
			}
		}
	})

	t.Run("stop grace outlasts the drain", func(t *testing.T) {
		grace := shutdownGrace(t)
		d, err := time.ParseDuration(proxy.StopGracePeriod)
		if err != nil {
			t.Fatalf("docker-compose.yml: %s.stop_grace_period %q: %v (Docker's default of 10s would SIGKILL mcproxy during its %v drain)",
				proxyService, proxy.StopGracePeriod, err, grace)
		}
		if d <= grace {
			t.Errorf("docker-compose.yml: %s.stop_grace_period %v, want more than mcproxy's drain grace %v", proxyService, d, grace)
		}
	})

	t.Run("VERSION reaches the binary", func(t *testing.T) {
		var b struct {
			Args map[string]string `yaml:"args"`
		}
		if proxy.Build.Kind != yaml.MappingNode || proxy.Build.Decode(&b) != nil || b.Args["VERSION"] == "" {
			t.Errorf("docker-compose.yml: %s.build.args should pass VERSION (e.g. ${VERSION:-dev})", proxyService)
		}
		if !img.BuildArgs["VERSION"] {
			t.Errorf("Dockerfile: the build stage declares no ARG VERSION")
		}
		data, _ := os.ReadFile(dockerfile)
		if !strings.Contains(string(data), "-X main.version=${VERSION}") {
			t.Errorf("Dockerfile: go build should set -X main.version=${VERSION}")
		}
	})
}

// TestMemcachedHealthcheckCommand runs the compose file's memcached
// healthcheck with busybox (the alpine image's sh, nc and grep) against a
// real memcached, then against a closed port: it passes, then fails.
func TestMemcachedHealthcheckCommand(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (Debian package busybox): the memcached image's healthcheck is not run")
	}
	compose := loadCompose(t)
	var svc composeService
	var name string
	for n, s := range compose.Services {
		if isMemcachedImage(s.Image) {
			svc, name = s, n
			break
		}
	}
	test := healthTest(t, name, svc.Healthcheck)
	if len(test) != 3 || test[0] != "sh" {
		t.Fatalf("%s.healthcheck %q: want a CMD-SHELL command", name, test)
	}
	// The alpine image's nc, grep and printf are busybox applets.
	bin := t.TempDir()
	for _, applet := range []string{"nc", "grep", "printf"} {
		if err := os.Symlink(busybox, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	port := strconv.Itoa(commandPort(t, name, svc.Command))
	run := func(addrPort string) error {
		cmd := exec.Command(busybox, "sh", "-c", strings.ReplaceAll(test[2], port, addrPort))
		cmd.Env = []string{"PATH=" + bin}
		cmd.WaitDelay = memcachedtest.WaitBound
		return cmd.Run()
	}
	mc := memcachedtest.Start(t)
	if err := run(strconv.Itoa(mc.Port)); err != nil {
		t.Errorf("healthcheck %q against a running memcached: %v", test[2], err)
	}
	closed := memcachedtest.FreeAddr(t)
	_, closedPort, _ := net.SplitHostPort(closed)
	if err := run(closedPort); err == nil {
		t.Errorf("healthcheck %q passed with nothing listening", test[2])
	}
}
