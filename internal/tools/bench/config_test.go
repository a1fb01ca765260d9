package bench

import (
	"context"
	"strings"
	"testing"
)

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
