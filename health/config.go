package health

import (
	"context"
	"net"
	"time"

	"github.com/mcproxy/mcproxy/internal/defaults"
)

// Defaults for the zero fields of Config. The config file's health section
// takes its defaults from here.
const (
	// DefaultInterval probes each backend once a second: a dead backend is
	// noticed within DefaultFailureLimit seconds or so.
	DefaultInterval = time.Second
	// DefaultTimeout is well above a healthy memcached's sub-millisecond
	// reply and leaves room in the interval for the next probe.
	DefaultTimeout = 500 * time.Millisecond
	// DefaultFailureLimit: one lost probe is noise, three in a row is a
	// backend to take out.
	DefaultFailureLimit = 3
	// DefaultSuccessLimit: a backend comes back after two good probes in a
	// row, not on one lucky answer.
	DefaultSuccessLimit = 2
	// DefaultFlapWindow, DefaultMinHoldDown and DefaultMaxHoldDown tune the
	// hold-down of a flapping backend (see Config).
	DefaultFlapWindow  = time.Minute
	DefaultMinHoldDown = 5 * time.Second
	DefaultMaxHoldDown = 2 * time.Minute
)

// Ranges of FailureLimit and SuccessLimit, inclusive, as config validation
// enforces them. The checker itself takes any positive count; the maxima
// only catch a typo that would leave a backend in or out for hours.
const (
	MinFailureLimit = 1
	MaxFailureLimit = 1000
	MinSuccessLimit = 1
	MaxSuccessLimit = 1000
)

// Config tunes the checker. Zero fields take the Default* values.
type Config struct {
	// Interval is the time between probes of one backend
	// (DefaultInterval).
	Interval time.Duration
	// Timeout bounds one probe, dial included (DefaultTimeout).
	Timeout time.Duration
	// FailureLimit is the number of consecutive failures that takes a
	// backend down (DefaultFailureLimit).
	FailureLimit int
	// SuccessLimit is the number of consecutive successful probes that
	// brings a down backend back (DefaultSuccessLimit).
	SuccessLimit int
	// FlapWindow: a backend that goes down again within this time of
	// coming back is flapping (DefaultFlapWindow).
	FlapWindow time.Duration
	// MinHoldDown is how long a flapping backend stays down at least, the
	// first time it flaps (DefaultMinHoldDown). It doubles with every
	// further flap.
	MinHoldDown time.Duration
	// MaxHoldDown caps the doubling hold-down (DefaultMaxHoldDown).
	MaxHoldDown time.Duration
	// BeforeUp, when set, runs after the probe that would bring a down
	// backend back, before it is marked up; an error counts as a failed
	// probe. The proxy flushes the backend here, so that values it missed
	// updates of while it was out are not served again.
	BeforeUp func(addr string) error
	// Dial, when set, opens a probe's connection (the proxy's TLS to the
	// backends); nil dials plain TCP. ctx carries the probe's deadline.
	// Like AlwaysUp it is fixed by New; SetConfig keeps it.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// AlwaysUp makes a checker that tracks its backends but never probes
	// them and never changes their state: every backend is up, and
	// ReportFailure is ignored. It is for callers that want the checker's
	// bookkeeping without its judgement, such as tests that fail backends
	// on purpose and want them kept in the ring. It is fixed by New;
	// SetConfig keeps it.
	AlwaysUp bool
}

// sameTuning reports whether c and o, defaults applied, probe and judge
// backends alike. BeforeUp and AlwaysUp are not compared.
func (c Config) sameTuning(o Config) bool {
	return c.Interval == o.Interval && c.Timeout == o.Timeout &&
		c.FailureLimit == o.FailureLimit && c.SuccessLimit == o.SuccessLimit &&
		c.FlapWindow == o.FlapWindow && c.MinHoldDown == o.MinHoldDown && c.MaxHoldDown == o.MaxHoldDown
}

func (c Config) withDefaults() Config {
	defaults.Positive(&c.Interval, DefaultInterval)
	defaults.Positive(&c.Timeout, DefaultTimeout)
	defaults.Positive(&c.FailureLimit, DefaultFailureLimit)
	defaults.Positive(&c.SuccessLimit, DefaultSuccessLimit)
	defaults.Positive(&c.FlapWindow, DefaultFlapWindow)
	defaults.Positive(&c.MinHoldDown, DefaultMinHoldDown)
	defaults.Positive(&c.MaxHoldDown, DefaultMaxHoldDown)
	c.MaxHoldDown = max(c.MaxHoldDown, c.MinHoldDown)
	return c
}
