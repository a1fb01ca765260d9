package deploytest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
)

// The units: one service, and two instances that take over from each
// other for upgrades.
const (
	unitPath         = "../../deploy/systemd/mcproxy.service"
	upgradeUnitPath  = "../../deploy/systemd/mcproxy@.service"
	upgradeSocketDir = "/run/mcproxy/"
)

// unitSettings reads a unit file's Key=Value lines; a key given twice keeps
// every value.
func unitSettings(t *testing.T, unitPath string) map[string][]string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatalf("read unit: %v", err)
	}
	defer f.Close()
	s := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not Key=Value", unitPath, line)
		}
		s[k] = append(s[k], v)
	}
	return s
}

func TestSystemdUnit(t *testing.T) { checkUnit(t, unitPath, "mcproxy.service") }

// TestSystemdUpgradeUnit: the template's instances share one user and a
// runtime directory that outlives each of them, for the upgrade socket;
// the rest is as mcproxy.service.
func TestSystemdUpgradeUnit(t *testing.T) {
	s := unitSettings(t, upgradeUnitPath)
	for k, want := range map[string]string{
		"User": "mcproxy", "RuntimeDirectory": strings.Trim(strings.TrimPrefix(upgradeSocketDir, "/run/"), "/"),
		"RuntimeDirectoryPreserve": "yes",
	} {
		if got := s[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s=%v, want %s=%s", upgradeUnitPath, k, got, k, want)
		}
	}
	checkUnit(t, upgradeUnitPath, "mcproxy@blue.service")
}

// checkUnit checks the settings both units share and has systemd verify
// the unit, installed as name.
func checkUnit(t *testing.T, unitPath, name string) {
	t.Helper()
	s := unitSettings(t, unitPath)
	for k, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got := s[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s=%v, want %s=%s", unitPath, k, got, k, want)
		}
	}
	// ProcSubset=pid hides /proc/stat, and with it the boot time the
	// process collector needs: process_start_time_seconds would vanish.
	if got := s["ProcSubset"]; len(got) > 0 && got[len(got)-1] == "pid" {
		t.Errorf("%s: ProcSubset=pid hides /proc/stat: /metrics loses process_start_time_seconds", unitPath)
	}
	start := strings.Fields(strings.Join(s["ExecStart"], " "))
	cfg := flagValue(start, "config")
	if cfg == "" || !strings.HasPrefix(cfg, "/etc/mcproxy/") {
		t.Errorf("ExecStart %q should read its config from /etc/mcproxy/ (ConfigurationDirectory=mcproxy)", start)
	}
	if pre := strings.Fields(strings.Join(s["ExecStartPre"], " ")); flagValue(pre, "config") != cfg || !strings.Contains(strings.Join(pre, " "), "-check") {
		t.Errorf("ExecStartPre %q should be mcproxy -check on ExecStart's config %s", pre, cfg)
	}
	stop, err := time.ParseDuration(strings.Join(s["TimeoutStopSec"], ""))
	if err != nil || stop <= shutdownGrace(t) {
		t.Errorf("TimeoutStopSec=%v, want more than mcproxy's drain grace %v", s["TimeoutStopSec"], shutdownGrace(t))
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit is not verified by systemd")
	}
	// verify wants the binaries to exist: point the unit at a real build.
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), name)
	text := strings.ReplaceAll(string(data), "/usr/local/bin/mcproxy", childproxy.BuildT(t))
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || strings.Contains(string(out), name+":") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
