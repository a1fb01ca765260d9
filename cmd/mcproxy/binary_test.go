package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// startBinary starts the mcproxy binary (built once per test run) on
// config (text with a %s for the listen address), with extra flags.
func startBinary(t *testing.T, config string, flags ...string) *childproxy.TestProxy {
	t.Helper()
	listen := memcachedtest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "mcproxy.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(config, listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-config", path, "-log-format", "console"}, flags...)
	return childproxy.StartT(t, childproxy.BuildT(t), listen, args...)
}
