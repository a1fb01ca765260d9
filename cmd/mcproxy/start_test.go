package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestPortInUseIsTheOnlyThingLogged: a client or admin port already in use
// fails the start with the bind error, and nothing before it says the
// proxy ran (no "clients drained" from a proxy stopped at once).
func TestPortInUseIsTheOnlyThingLogged(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	mc := memcachedtest.Start(t)
	for _, tc := range []struct{ name, config, want string }{
		{"listen", fmt.Sprintf("listen: %s\nbackends: [%s]\n", taken.Addr(), mc.Addr), "listen " + taken.Addr().String()},
		{"admin", fmt.Sprintf("listen: %s\nadmin: %s\nbackends: [%s]\n", memcachedtest.FreeAddr(t), taken.Addr(), mc.Addr),
			"admin listen " + taken.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mcproxy.yaml")
			writeFile(t, path, tc.config)
			core, logs := observer.New(zapcore.DebugLevel)
			err := serve(context.Background(), path, nil, zap.New(core), time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("serve with the %s port in use: %v, want an error naming %q", tc.name, err, tc.want)
			}
			for _, e := range logs.All() {
				t.Errorf("logged before the bind error: %s %v", e.Message, e.ContextMap())
			}
		})
	}
}

// TestStartWarnsOfUnresolvedBackends: a backend whose name does not resolve
// (the image's built-in config run outside docker compose) is named in a
// warning at start, with the config file, rather than left to show only as
// SERVER_ERROR and probe failures.
func TestStartWarnsOfUnresolvedBackends(t *testing.T) {
	mc := memcachedtest.Start(t)
	path := filepath.Join(t.TempDir(), "mcproxy.yaml")
	writeFile(t, path, fmt.Sprintf("listen: %s\nbackends: [%s, nosuchhost.invalid:11211]\n", memcachedtest.FreeAddr(t), mc.Addr))
	core, logs := observer.New(zapcore.InfoLevel)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, nil, zap.New(core), time.Second) }()
	memcachedtest.WaitFor(t, "the unresolved-backend warning", func() bool {
		return logs.FilterMessage("backend address does not resolve").Len() > 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	warns := logs.FilterMessage("backend address does not resolve").All()
	if len(warns) != 1 {
		t.Fatalf("%d warnings, want 1 (for nosuchhost.invalid only): %v", len(warns), warns)
	}
	m := warns[0].ContextMap()
	if m["config"] != path || !strings.Contains(fmt.Sprint(m["problem"]), "backends[1].addr nosuchhost.invalid:11211 does not resolve") {
		t.Errorf("warning fields: %v", m)
	}
	started := logs.FilterMessage("mcproxy started").All()
	if len(started) != 1 || started[0].ContextMap()["config"] != path {
		t.Errorf("start line does not name the config file: %v", started)
	}
}
