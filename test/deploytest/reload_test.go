package deploytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// localConfig is a config for a test process on loopback.
func localConfig(listen string, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nbackends:\n", listen)
	for _, be := range backends {
		fmt.Fprintf(&b, "  - addr: %s\n", be)
	}
	b.WriteString("health: {interval: 100ms, timeout: 100ms}\n")
	return b.String()
}

// TestComposeConfigReloads runs a real mcproxy on a directory laid out as
// docker-compose.yml mounts it (the host directory of the volume, the
// -config path inside it) and edits the file the two ways people do: in
// place (sed, most editors' "save") and by writing a new file and renaming
// it over the old one; then SIGHUP. Each is picked up.
func TestComposeConfigReloads(t *testing.T) {
	compose := loadCompose(t)
	img := loadDockerfile(t)
	svc := compose.Services[proxyService]
	cfgPath := proxyConfigPath(t, svc, img)
	m, rel := configMount(t, svc, cfgPath)
	if rel == "." {
		t.Fatalf("docker-compose.yml mounts the config file %s itself; see TestComposeMatchesDockerConfig", cfgPath)
	}

	// The host side of the mount, as in the repository.
	repo := t.TempDir()
	hostDir := filepath.Join(repo, m.Source)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(hostDir, rel)
	a, b, c := memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)
	listen := memcachedtest.FreeAddr(t)
	if err := os.WriteFile(file, []byte(localConfig(listen, a.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startMcproxy(t, listen, "-config", file, "-log-level", "debug")
	memcachedtest.WaitStat(t, "start", p.Listen, "backends", "1")

	// In place: same inode, truncated and rewritten.
	before, _ := os.Stat(file)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(localConfig(listen, a.Addr, b.Addr)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if after, _ := os.Stat(file); !os.SameFile(before, after) {
		t.Fatal("the in-place edit replaced the file")
	}
	memcachedtest.WaitStat(t, "edit in place", p.Listen, "backends", "2")

	// By rename, as vim, VS Code and `sed -i` do.
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(localConfig(listen, a.Addr, b.Addr, c.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitStat(t, "rename over", p.Listen, "backends", "3")

	// SIGHUP (docker compose kill -s HUP mcproxy) reloads too.
	gen, _ := strconv.Atoi(memcachedtest.Stats(t, listen, "")["config_generation"])
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitStat(t, "SIGHUP", p.Listen, "config_generation", strconv.Itoa(gen+1))
}
