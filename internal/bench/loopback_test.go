package bench

import (
	"context"
	"strings"
	"testing"
)

func TestResolveLoopback(t *testing.T) {
	ok := map[string]string{
		"127.0.0.1:11211":        "127.0.0.1:11211",
		"127.1.2.3:1":            "127.1.2.3:1",
		"localhost:11211":        "127.0.0.1:11211",
		"LOCALHOST.:11211":       "127.0.0.1:11211",
		"[::1]:11211":            "[::1]:11211",
		"[::ffff:127.0.0.1]:123": "127.0.0.1:123",
	}
	for in, want := range ok {
		got, err := ResolveLoopback(in)
		if err != nil || got != want {
			t.Errorf("ResolveLoopback(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	refused := []string{
		"10.0.0.1:11211",
		"192.168.1.10:11211",
		"0.0.0.0:11211",
		"[::]:11211",
		":11211",
		"example.com:11211",
		"localhost.example.com:11211",
		"8.8.8.8:53",
		"[fe80::1%lo]:11211",
		"128.0.0.1:11211",
		"127.0.0.1",          // no port
		"127.0.0.1:0",        // no port
		"127.0.0.1:99999",    // bad port
		"127.0.0.1:memcache", // named ports are not looked up either
	}
	for _, in := range refused {
		if got, err := ResolveLoopback(in); err == nil {
			t.Errorf("ResolveLoopback(%q) = %q, want an error", in, got)
		}
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "192.0.2.1:11211" // TEST-NET-1: must be refused before any dial
	res, err := Run(context.Background(), cfg)
	if err == nil || res != nil {
		t.Fatalf("Run to %s = %v, %v; want a refusal", cfg.Addr, res, err)
	}
	if !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("error %q does not say why", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"zero duration":  func(c *Config) { c.Duration = 0 },
		"no conns":       func(c *Config) { c.Conns = 0 },
		"no pipeline":    func(c *Config) { c.Pipeline = 0 },
		"no keys":        func(c *Config) { c.Keys = 0 },
		"zero ratio":     func(c *Config) { c.GetWeight, c.SetWeight = 0, 0 },
		"space prefix":   func(c *Config) { c.KeyPrefix = "a b" },
		"long prefix":    func(c *Config) { c.KeyPrefix = strings.Repeat("k", 250) },
		"huge multiget":  func(c *Config) { c.MultiGet = 5000 },
		"negative value": func(c *Config) { c.ValueSize = -1 },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if _, err := cfg.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg := DefaultConfig()
	if _, err := cfg.validate(); err != nil {
		t.Fatalf("default config refused: %v", err)
	}
}

func TestParseRatio(t *testing.T) {
	for in, want := range map[string][2]int{"9:1": {9, 1}, "1:0": {1, 0}, "0:1": {0, 1}, "50:50": {50, 50}} {
		g, s, err := ParseRatio(in)
		if err != nil || g != want[0] || s != want[1] {
			t.Errorf("ParseRatio(%q) = %d, %d, %v", in, g, s, err)
		}
	}
	for _, in := range []string{"", "9", "0:0", "-1:2", "a:b", "1:2:3", "9/1"} {
		if _, _, err := ParseRatio(in); err == nil {
			t.Errorf("ParseRatio(%q) accepted", in)
		}
	}
}
