package mcproxyproc

import (
	"flag"
	"time"
)

// HealthSettings are the keys of the health section that mcfailover and
// mcsoak write into the config of the mcproxy they start (each with its own
// defaults): how often a backend is probed and how many probes in a row
// take it out of the ring and bring it back.
type HealthSettings struct {
	Interval     time.Duration // health.interval
	Timeout      time.Duration // health.timeout
	FailureLimit int           // health.failure_limit
	SuccessLimit int           // health.success_limit
}

// RegisterFlags registers -health-interval, -health-timeout, -failure-limit
// and -success-limit on fs: the flags set h's fields and default to their
// current values. Both tools take these flags, so they are named and
// described alike in both.
func (h *HealthSettings) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&h.Interval, "health-interval", h.Interval, "proxy health.interval")
	fs.DurationVar(&h.Timeout, "health-timeout", h.Timeout, "proxy health.timeout")
	fs.IntVar(&h.FailureLimit, "failure-limit", h.FailureLimit, "proxy health.failure_limit")
	fs.IntVar(&h.SuccessLimit, "success-limit", h.SuccessLimit, "proxy health.success_limit")
}
