package health

import "time"

// Config tunes the checker. Zero fields take the defaults noted.
type Config struct {
	// Interval is the time between probes of one backend (1s).
	Interval time.Duration
	// Timeout bounds one probe, dial included (500ms).
	Timeout time.Duration
	// FailureLimit is the number of consecutive failures that takes a
	// backend down (3).
	FailureLimit int
	// SuccessLimit is the number of consecutive successful probes that
	// brings a down backend back (2).
	SuccessLimit int
	// FlapWindow: a backend that goes down again within this time of
	// coming back is flapping (1m).
	FlapWindow time.Duration
	// MinHoldDown is how long a flapping backend stays down at least, the
	// first time it flaps (5s). It doubles with every further flap.
	MinHoldDown time.Duration
	// MaxHoldDown caps the doubling hold-down (2m).
	MaxHoldDown time.Duration
	// BeforeUp, when set, runs after the probe that would bring a down
	// backend back, before it is marked up; an error counts as a failed
	// probe. The proxy flushes the backend here, so that values it missed
	// updates of while it was out are not served again.
	BeforeUp func(addr string) error
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	if c.FailureLimit <= 0 {
		c.FailureLimit = 3
	}
	if c.SuccessLimit <= 0 {
		c.SuccessLimit = 2
	}
	if c.FlapWindow <= 0 {
		c.FlapWindow = time.Minute
	}
	if c.MinHoldDown <= 0 {
		c.MinHoldDown = 5 * time.Second
	}
	if c.MaxHoldDown <= 0 {
		c.MaxHoldDown = 2 * time.Minute
	}
	c.MaxHoldDown = max(c.MaxHoldDown, c.MinHoldDown)
	return c
}
