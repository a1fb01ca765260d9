package failover

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

// Scenario names how the victim backend fails.
type Scenario string

const (
	// Kill ends the victim with SIGKILL: its connections are reset, new ones
	// are refused, and it comes back empty on the same port.
	Kill Scenario = "kill"
	// Freeze stops the victim with SIGSTOP: its sockets stay open and accept
	// connections, but nothing answers until SIGCONT. It comes back with its
	// data.
	Freeze Scenario = "freeze"
)

// Scenarios lists every scenario, in the order "all" runs them.
var Scenarios = []Scenario{Kill, Freeze}

// ParseScenario parses "kill" or "freeze".
func ParseScenario(s string) (Scenario, error) {
	for _, sc := range Scenarios {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("scenario %q: want kill or freeze", s)
}

// numBackends is the size of the cluster; the first backend is the victim.
const numBackends = 3

// Config describes one run. DefaultConfig gives the defaults of mcfailover;
// Run validates every field.
type Config struct {
	// Mcproxy is the path of the mcproxy binary to run.
	Mcproxy string
	// Memcached is the memcached binary, a path or a name looked up in PATH.
	Memcached string
	// Scenario is how the victim fails.
	Scenario Scenario

	// Conns is the number of load connections, one goroutine each.
	Conns int
	// Keys is the key space: keys fo:0 .. fo:<Keys-1>, all stored before the
	// load starts.
	Keys int
	// ValueSize is the size of every value stored, in bytes.
	ValueSize int
	// SetPercent is the share of sets in the load, 0..100; the rest are
	// single-key gets.
	SetPercent int
	// Seed seeds the key and command choice of the load.
	Seed uint64

	// BackendTimeout is written to the config as backend.timeout.
	BackendTimeout time.Duration
	// Health is written to the config's health section (auto_eject is
	// always true).
	Health mcproxyproc.HealthSettings

	// Steady is how long the load runs before the victim is failed.
	Steady time.Duration
	// DownFor is how long the victim stays dead or frozen.
	DownFor time.Duration
	// ReaddWait bounds the wait for the victim to be back in the ring after
	// it was recovered; 0 means a bound derived from the health settings.
	ReaddWait time.Duration
	// After is how long the load keeps running once the victim is back in
	// the ring (or the wait for it ended).
	After time.Duration
	// RequestTimeout bounds every request of the load, from write to the end
	// of the reply.
	RequestTimeout time.Duration
	// PollInterval is the period of the "stats backends" poller.
	PollInterval time.Duration
	// MaxRun cuts the whole run off, setup included.
	MaxRun time.Duration

	// OwnerSample is how many keys, spread evenly over the key space, have
	// their owning backend looked up; hit ratios per owner use these keys.
	// 0 looks up every key.
	OwnerSample int
	// ReaddCheckKeys is how many of the victim's sampled keys are set
	// through the proxy after re-adding and then looked up on the victim
	// directly.
	ReaddCheckKeys int

	// KeepDir keeps the temporary directory (config and mcproxy log) instead
	// of removing it; Report.Dir names it.
	KeepDir bool
	// Progress, if not nil, is called with one line per step of the run.
	Progress func(format string, args ...any)
}

// DefaultConfig returns the defaults of mcfailover. The health settings are
// those of configs/local.yaml.
func DefaultConfig() Config {
	return Config{
		Mcproxy:        "bin/mcproxy",
		Memcached:      "memcached",
		Scenario:       Kill,
		Conns:          20,
		Keys:           30000,
		ValueSize:      100,
		SetPercent:     10,
		Seed:           1,
		BackendTimeout: time.Second,
		Health: mcproxyproc.HealthSettings{
			Interval:     time.Second,
			Timeout:      500 * time.Millisecond,
			FailureLimit: 3,
			SuccessLimit: 2,
		},
		Steady:         2 * time.Second,
		DownFor:        5 * time.Second,
		After:          2 * time.Second,
		RequestTimeout: 5 * time.Second,
		PollInterval:   20 * time.Millisecond,
		MaxRun:         60 * time.Second,
		OwnerSample:    0,
		ReaddCheckKeys: 100,
	}
}

// Limits that keep a typo from turning into a runaway run.
const (
	maxConns  = 1000
	maxKeys   = 1_000_000
	maxValue  = 1 << 20
	minValue  = 32 // room for "<key>:<version>:"
	maxMaxRun = 10 * time.Minute
)

func (c *Config) validate() error {
	var problems []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	check(c.Mcproxy != "", "mcproxy binary path is empty")
	check(c.Memcached != "", "memcached binary is empty")
	check(c.Scenario == Kill || c.Scenario == Freeze, "scenario must be kill or freeze, got %q", c.Scenario)
	check(c.Conns >= 1 && c.Conns <= maxConns, "conns must be 1..%d, got %d", maxConns, c.Conns)
	check(c.Keys >= numBackends && c.Keys <= maxKeys, "keys must be %d..%d, got %d", numBackends, maxKeys, c.Keys)
	check(c.ValueSize >= minValue && c.ValueSize <= maxValue, "value size must be %d..%d, got %d", minValue, maxValue, c.ValueSize)
	check(c.SetPercent >= 0 && c.SetPercent <= 100, "set percent must be 0..100, got %d", c.SetPercent)
	check(c.BackendTimeout > 0, "backend timeout must be positive, got %v", c.BackendTimeout)
	h := &c.Health
	check(h.Interval > 0, "health interval must be positive, got %v", h.Interval)
	check(h.Timeout > 0, "health timeout must be positive, got %v", h.Timeout)
	check(h.FailureLimit >= 1, "failure limit must be at least 1, got %d", h.FailureLimit)
	check(h.SuccessLimit >= 1, "success limit must be at least 1, got %d", h.SuccessLimit)
	check(c.Steady > 0, "steady phase must be positive, got %v", c.Steady)
	check(c.DownFor > 0, "down-for must be positive, got %v", c.DownFor)
	check(c.ReaddWait >= 0, "re-add wait must not be negative, got %v", c.ReaddWait)
	check(c.After >= 0, "after phase must not be negative, got %v", c.After)
	check(c.RequestTimeout > 0, "request timeout must be positive, got %v", c.RequestTimeout)
	check(c.PollInterval > 0, "poll interval must be positive, got %v", c.PollInterval)
	check(c.MaxRun > 0 && c.MaxRun <= maxMaxRun, "max run must be in (0, %v], got %v", maxMaxRun, c.MaxRun)
	check(c.OwnerSample >= 0 && c.OwnerSample <= c.Keys, "owner sample must be 0 (all keys)..keys (%d), got %d", c.Keys, c.OwnerSample)
	check(c.ReaddCheckKeys >= 0, "re-add check keys must not be negative, got %d", c.ReaddCheckKeys)
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	return nil
}

// readdWait returns the bound on waiting for the victim to come back into
// the ring: enough for Health.SuccessLimit probes plus slack.
func (c *Config) readdWait() time.Duration {
	if c.ReaddWait > 0 {
		return c.ReaddWait
	}
	h := &c.Health
	return time.Duration(h.SuccessLimit+2)*h.Interval + h.Timeout + 5*time.Second
}

func (c *Config) progress(format string, args ...any) {
	if c.Progress != nil {
		c.Progress(format, args...)
	}
}
