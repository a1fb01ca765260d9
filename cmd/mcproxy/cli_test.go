package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

func TestExitCodes(t *testing.T) {
	valid := filepath.Join(t.TempDir(), "ok.yaml")
	writeFile(t, valid, "listen: 127.0.0.1:11211\nbackends: [127.0.0.1:11311]\n")
	invalid := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, invalid, "listen: 127.0.0.1:11211\nbackends: [127.0.0.1:11311]\nhealth:\n  interval: 0s\n  failure_limt: 3\n")
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		stderr  string // substring wanted in what main prints
		noPrint bool
	}{
		{name: "help", args: []string{"-help"}, code: 0, noPrint: true},
		{name: "h", args: []string{"-h"}, code: 0, noPrint: true},
		{name: "unknown flag", args: []string{"-nope"}, code: 2, noPrint: true}, // flag printed it
		{name: "argument", args: []string{"extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{name: "check valid", args: []string{"-check", "-config", valid}, code: 0, noPrint: true},
		{name: "check invalid", args: []string{"-check", "-config", invalid}, code: 1,
			stderr: "2 problems:\nline 4: health.interval: 0s must be greater than 0\nline 5: unknown key \"health.failure_limt\""},
		{name: "check missing", args: []string{"-check", "-config", invalid + ".gone"}, code: 1, stderr: "no such file"},
		// The flags given with -check are checked as a start checks them,
		// and a bad value is a bad command line.
		{name: "check bad log level", args: []string{"-check", "-config", valid, "-log-level", "verbose"}, code: 2,
			stderr: `-log-level "verbose"`},
		{name: "check bad log format", args: []string{"-check", "-config", valid, "-log-format", "xml"}, code: 2,
			stderr: `-log-format "xml": want json or console`},
		{name: "bad log level", args: []string{"-config", valid, "-log-level", "verbose"}, code: 2, stderr: `-log-level "verbose"`},
		{name: "zap-only log level", args: []string{"-config", valid, "-log-level", "fatal"}, code: 2, stderr: `-log-level "fatal": want debug, info, warn or error`},
		{name: "negative grace", args: []string{"-config", valid, "-shutdown-grace", "-1s"}, code: 2, stderr: "-shutdown-grace -1s must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(tc.args)
			if got := exitCode(err, &stderr); got != tc.code {
				t.Fatalf("mcproxy %s: exit %d (err %v), want %d", strings.Join(tc.args, " "), got, err, tc.code)
			}
			if tc.noPrint && stderr.Len() > 0 {
				t.Errorf("mcproxy %s: main printed %q, want nothing more", strings.Join(tc.args, " "), stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("mcproxy %s: printed %q, want it to contain %q", strings.Join(tc.args, " "), stderr.String(), tc.stderr)
			}
		})
	}
}

// TestHelpIsErrHelp: -help prints the usage on stdout (so `mcproxy -help |
// grep -- -config` finds it) and nothing on stderr; a mistake prints the
// problem and the usage on stderr only.
func TestHelpIsErrHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	_, err := parseFlags([]string{"-help"}, &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-help) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-check", "-probe", "-config", "mcproxy.yaml, /etc/mcproxy/mcproxy.yaml"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage does not mention %q:\n%s", want, out.String())
		}
	}
	if errOut.Len() > 0 {
		t.Errorf("-help wrote to stderr: %q", errOut.String())
	}

	out.Reset()
	_, err = parseFlags([]string{"-nope"}, &out, &errOut)
	var ue usageError
	if !errors.As(err, &ue) || out.Len() > 0 {
		t.Fatalf("parseFlags(-nope) = %v, stdout %q; want a usage error and nothing on stdout", err, out.String())
	}
	for _, want := range []string{"flag provided but not defined: -nope", "Usage: mcproxy", "-config"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr after -nope lacks %q:\n%s", want, errOut.String())
		}
	}
}

// TestCheckWarnsOfUnresolvedBackends: -check accepts a backend whose name
// does not resolve (it may later) but says that its keys would fail.
func TestCheckWarnsOfUnresolvedBackends(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	writeFile(t, file, "backends: [127.0.0.1:11311, nosuchhost.invalid:11211]\n")
	var out, warn bytes.Buffer
	if err := check(file, &out, &warn); err != nil {
		t.Fatalf("check: %v", err)
	}
	if !strings.Contains(out.String(), "is valid") {
		t.Errorf("stdout: %q", out.String())
	}
	want := "mcproxy: warning: backends[1].addr nosuchhost.invalid:11211 does not resolve ("
	if !strings.Contains(warn.String(), want) || strings.Contains(warn.String(), "127.0.0.1:11311") {
		t.Errorf("warnings: %q, want one line containing %q", warn.String(), want)
	}
}

func TestDefaultConfigSearch(t *testing.T) {
	dir := t.TempDir()
	local, system := filepath.Join(dir, "mcproxy.yaml"), filepath.Join(dir, "etc", "mcproxy.yaml")
	saved := defaultConfigPaths
	defaultConfigPaths = []string{local, system}
	t.Cleanup(func() { defaultConfigPaths = saved })

	_, err := flags{}.configPath()
	if err == nil || !strings.Contains(err.Error(), local+", "+system) {
		t.Fatalf("no file: configPath error %v, want one naming %s and %s", err, local, system)
	}
	if err := os.MkdirAll(filepath.Dir(system), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, system, "")
	if got, err := (flags{}).configPath(); err != nil || got != system {
		t.Fatalf("only %s: configPath = %q, %v", system, got, err)
	}
	writeFile(t, local, "")
	if got, err := (flags{}).configPath(); err != nil || got != local {
		t.Fatalf("both: configPath = %q, %v; want the working directory's %s first", got, err, local)
	}
	if got, _ := (flags{config: "x.yaml"}).configPath(); got != "x.yaml" {
		t.Fatalf("-config x.yaml: configPath = %q", got)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "b2192e1f00d5a3c6e9a1b2c3"}, {Key: "vcs.modified", Value: "true"}}}, "b2192e1f00d5-dirty"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	} {
		if got := versionFromBuildInfo(&tc.bi); got != tc.want {
			t.Errorf("versionFromBuildInfo(%+v) = %q, want %q", tc.bi.Main, got, tc.want)
		}
	}
}

// TestOneVersionString: -version, the version command, stats and
// mcproxy_build_info all show the same string.
func TestOneVersionString(t *testing.T) {
	mc := memcachedtest.Start(t)
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	startInstance(t, listen, admin, mc.Addr)
	want := fullVersion()
	if got := memcachedtest.Send(t, listen, "version\r\n", "\r\n", 1); got != "VERSION "+want+"\r\n" {
		t.Errorf("version command: %q, want VERSION %s", got, want)
	}
	if got := memcachedtest.Stats(t, listen, "")["version"]; got != want {
		t.Errorf("stats version %q, want %q", got, want)
	}
	m := scrape(t, admin)
	found := false
	for name, v := range m {
		if strings.HasPrefix(name, "mcproxy_build_info{") {
			found = true
			if !strings.Contains(name, `version="`+want+`"`) || !strings.Contains(name, `goversion="go`) || v != 1 {
				t.Errorf("%s = %v, want version=%q, a goversion and value 1", name, v, want)
			}
		}
	}
	if !found {
		t.Errorf("no mcproxy_build_info in /metrics")
	}
}

func TestProbe(t *testing.T) {
	mc := memcachedtest.Start(t)
	listen := memcachedtest.FreeAddr(t)
	startInstance(t, listen, "", mc.Addr)
	if err := probe(listen, memcachedtest.WaitBound); err != nil {
		t.Errorf("probe of a running mcproxy: %v", err)
	}
	if code := exitCode(run([]string{"-probe", listen}), &bytes.Buffer{}); code != 0 {
		t.Errorf("mcproxy -probe %s: exit %d, want 0", listen, code)
	}
	if err := probe(mc.Addr, memcachedtest.WaitBound); err != nil {
		t.Errorf("probe of memcached itself: %v", err)
	}

	// Nothing listening: refused at once.
	closed := memcachedtest.FreeAddr(t)
	var stderr bytes.Buffer
	if code := exitCode(run([]string{"-probe", closed}), &stderr); code != 1 || !strings.Contains(stderr.String(), closed) {
		t.Errorf("mcproxy -probe %s (nothing listening): exit %d, %q; want 1 naming the address", closed, code, stderr.String())
	}

	// Something that answers, but not memcached; and something that
	// accepts and never answers: the timeout bounds the probe.
	wrong := fakeServer(t, "HTTP/1.1 400 Bad Request\r\n")
	if err := probe(wrong, memcachedtest.WaitBound); err == nil || !strings.Contains(err.Error(), "HTTP/1.1 400") {
		t.Errorf("probe of a non-memcached server: %v, want an error quoting its reply", err)
	}
	silent := fakeServer(t, "")
	start := time.Now()
	if err := probe(silent, 200*time.Millisecond); err == nil {
		t.Errorf("probe of a silent server succeeded")
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("probe of a silent server: %v, want a timeout", err)
	}
	if d := time.Since(start); d > memcachedtest.WaitBound {
		t.Errorf("probe with a 200ms timeout took %v", d)
	}
}

// fakeServer accepts connections on loopback and writes reply to each (or
// nothing) without closing it until the test ends.
func fakeServer(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
			if reply != "" {
				_, _ = c.Write([]byte(reply))
			}
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
