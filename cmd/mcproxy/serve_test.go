package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/tools/childproc"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { childproxy.VerifyTestMain(m) }

// instance is mcproxy's serve loop running in-process on a config file.
type instance struct {
	path   string
	listen string
	reload chan struct{}
}

func startInstance(t *testing.T, listen, admin string, backends ...string) *instance {
	t.Helper()
	return serveConfig(t, configText(listen, admin, backends...), listen)
}

// serveConfig runs serve in-process on a config file holding text, until
// the test ends, and returns once addr (a port the config listens on)
// accepts connections.
func serveConfig(t *testing.T, text, addr string) *instance {
	t.Helper()
	in := &instance{path: filepath.Join(t.TempDir(), "mcproxy.yaml"), listen: addr, reload: make(chan struct{}, 1)}
	in.write(t, text)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, in.path, in.reload, zaptest.NewLogger(t), shutdownGrace) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(memcachedtest.WaitBound + shutdownGrace):
			t.Error("serve did not return after cancel")
		}
	})
	ended := func() error {
		select {
		case err := <-done:
			done <- err // for the cleanup
			return fmt.Errorf("serve ended at start: %v", err)
		default:
			return nil
		}
	}
	if err := childproc.WaitAccepting(addr, memcachedtest.WaitBound, ended); err != nil {
		t.Fatalf("mcproxy not listening: %v", err)
	}
	return in
}

func configText(listen, admin string, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin: %q\nbackends:\n", listen, admin)
	for _, be := range backends {
		fmt.Fprintf(&b, "  - %s\n", be)
	}
	b.WriteString("health: {interval: 100ms, timeout: 100ms}\n")
	return b.String()
}

// write replaces the file the way many editors do: a new file renamed over
// the old one.
func (in *instance) write(t *testing.T, text string) {
	t.Helper()
	tmp := in.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, in.path); err != nil {
		t.Fatal(err)
	}
}

// waitStat polls a stat of the proxy at addr until it has the wanted value.
func waitStat(t *testing.T, addr, name, want string) {
	t.Helper()
	memcachedtest.WaitStat(t, "mcproxy", addr, name, want)
}

// TestEditConfigUnderLoad edits the config file of a running mcproxy under
// a steady client load: add a fourth backend, remove one, change a weight,
// write an invalid file, fix it, and SIGHUP. No client sees an error, and
// after the add about a quarter of the new writes land on the new backend.
func TestEditConfigUnderLoad(t *testing.T) {
	var be []string
	for i := 0; i < 4; i++ {
		be = append(be, memcachedtest.Start(t).Addr)
	}
	in := startInstance(t, memcachedtest.FreeAddr(t), "", be[:3]...)
	l := memcachedtest.StartLoad(t, in.listen, 6, "reload:", 4000)
	l.Check(t, "start", 300)

	in.write(t, configText(in.listen, "", be...))
	waitStat(t, in.listen, "config_generation", "2")
	waitStat(t, in.listen, "live_backends", "4") // it joins once probes vouch for it
	l.Check(t, "added a fourth backend", 300)
	// Count the writes each backend receives from here on.
	before := make([]int, 4)
	for i, a := range be {
		before[i] = memcachedtest.Stat(t, a, "cmd_set")
	}
	var total, onNew int
	for total < 4000 {
		l.Check(t, "writes after the add", 300)
		total, onNew = 0, 0
		for i, a := range be {
			n := memcachedtest.Stat(t, a, "cmd_set") - before[i]
			total += n
			if i == 3 {
				onNew = n
			}
		}
	}
	share := float64(onNew) / float64(total)
	t.Logf("after the add, the new backend got %.3f of %d writes", share, total)
	if share < 0.15 || share > 0.35 {
		t.Errorf("the new backend got %.3f of the writes, want about a quarter", share)
	}

	in.write(t, configText(in.listen, "", be[1:]...))
	waitStat(t, in.listen, "config_generation", "3")
	l.Check(t, "removed the first backend", 300)
	if got := memcachedtest.Stats(t, in.listen, "")["backends"]; got != "3" {
		t.Fatalf("backends after removal: %s", got)
	}

	in.write(t, configText(in.listen, "", "{addr: "+be[1]+", weight: 3}", be[2], be[3]))
	waitStat(t, in.listen, "config_generation", "4")
	l.Check(t, "changed a weight", 300)
	if got := memcachedtest.Stats(t, in.listen, "backends")["backend:"+be[1]+":weight"]; got != "3" {
		t.Fatalf("weight after the edit: %q", got)
	}

	in.write(t, "listen: "+in.listen+"\nbackends:\n  - addr: "+be[1]+"\n    wieght: 2\n")
	waitStat(t, in.listen, "config_reload_failures", "1")
	l.Check(t, "invalid file", 300)
	if got := memcachedtest.Stats(t, in.listen, "")["config_generation"]; got != "4" {
		t.Fatalf("an invalid file changed the generation to %s", got)
	}

	in.write(t, configText(in.listen, "", be[:3]...))
	waitStat(t, in.listen, "config_generation", "5")
	l.Check(t, "fixed file", 300)

	in.reload <- struct{}{} // SIGHUP reloads even without an edit
	waitStat(t, in.listen, "config_generation", "6")
	l.Stop()
	l.CheckErrors(t, "after the last reload")
	t.Logf("%d client operations through five reloads, no errors", l.Ops())
}

// TestRestartOnlyKeysKeepRunningValues: a changed listen address is not
// applied (it needs a restart) while the backend change in the same edit is.
func TestRestartOnlyKeysKeepRunningValues(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	in := startInstance(t, memcachedtest.FreeAddr(t), "", a.Addr)
	other := memcachedtest.FreeAddr(t)
	in.write(t, configText(other, "", a.Addr, b.Addr))
	waitStat(t, in.listen, "config_generation", "2")
	if got := memcachedtest.Stats(t, in.listen, "")["backends"]; got != "2" {
		t.Fatalf("backends: %s", got)
	}
	if c, err := net.DialTimeout("tcp", other, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("mcproxy moved its listener to %s without a restart", other)
	}
}

// TestHealthSettingsApplyLive: the checker's interval, timeout and limits
// follow an edit of the file without a restart.
func TestHealthSettingsApplyLive(t *testing.T) {
	a := memcachedtest.Start(t)
	in := startInstance(t, memcachedtest.FreeAddr(t), "", a.Addr)
	text := strings.Replace(configText(in.listen, "", a.Addr),
		"health: {interval: 100ms, timeout: 100ms}", "health: {interval: 250ms, timeout: 50ms, failure_limit: 5, success_limit: 4}", 1)
	in.write(t, text)
	waitStat(t, in.listen, "config_generation", "2")
	st := memcachedtest.Stats(t, in.listen, "settings")
	for k, v := range map[string]string{"health_interval": "250ms", "health_timeout": "50ms",
		"health_failure_limit": "5", "health_success_limit": "4"} {
		if st[k] != v {
			t.Errorf("stats settings %s = %q after the edit, want %q", k, st[k], v)
		}
	}
}
