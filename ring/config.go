package ring

import (
	"fmt"
	"math"
)

// Defaults for the zero fields of Config (and of Member.Weight). The config
// file's ring section and backends[].weight take theirs from here.
const (
	// DefaultPartitions is a prime, as the library advises (after xxhash it
	// matters little). 7919 is fine-grained enough that ten backends own
	// about 790 partitions each, so one partition more or less is about 0.1%
	// of a backend's keys, while the table is 31 KiB and the build takes
	// about 1.5ms for ten backends. The library's default, 271, would make
	// one partition almost 4% of a backend's keys with ten backends.
	DefaultPartitions = 7919
	// DefaultReplicationFactor is the number of ring points per share. The
	// load bound caps the busiest backend; only more points lift the
	// idlest. Measured over random address sets (TestBalanceReplicationFactor),
	// 20 points leave the idlest of 3 backends with as little as 0.52 of its
	// fair share, 160 points with 0.87, for ~1.9ms instead of ~1.1ms to build
	// a ring of ten backends.
	DefaultReplicationFactor = 160
	// DefaultLoad lets a share own at most 25% more partitions than its fair
	// share.
	DefaultLoad = 1.25
	// DefaultWeight is a member's weight when it gives none: one share.
	DefaultWeight = 1
)

// Ranges of Config's fields and of Member.Weight, inclusive. The maxima keep
// a typo in a config file from building a table of gigabytes or a ring that
// takes minutes to build; config validation reports the same ranges.
const (
	MinPartitions        = 1
	MaxPartitions        = 1 << 20
	MinReplicationFactor = 1
	MaxReplicationFactor = 1000
	// MinLoad is the smallest load bound: 1.0 already forces equal
	// partition counts per share. Below it, whether a ring fits would
	// depend on how many backends are live (see Config).
	MinLoad   = 1.0
	MinWeight = 1
	MaxWeight = 1000
)

// maxBuildWork bounds shares x ring points (points = shares x
// ReplicationFactor). The library re-sorts all ring points each time it
// adds a share, so its build time grows with that product: about 0.5s at
// 2e7 (1000 shares at ReplicationFactor 20) and 6s at 1e8. 1<<26 keeps a
// rebuild, which delays an ejection, to about 2s at worst.
const maxBuildWork = 1 << 26

// Config tunes the ring. Zero fields take the defaults (DefaultPartitions,
// DefaultReplicationFactor, DefaultLoad).
//
// Partitions must be in [MinPartitions, MaxPartitions], ReplicationFactor
// in [MinReplicationFactor, MaxReplicationFactor] and Load at least
// MinLoad. Load 1.0 forces equal partition counts per share (at the
// price of more keys moving when a backend joins or leaves); a large Load
// turns the bound off and gives plain consistent hashing. Load below 1.0 is
// rejected even where it would happen to fit, because whether it fits
// depends on the number of live backends, and an ejection must never make a
// valid config unbuildable.
//
// Build time grows with shares^2 x ReplicationFactor, where shares is the
// sum of the weights; New refuses rings where that passes 2^26 (1000
// weight-1 backends at ReplicationFactor 67, 647 at the default 160). Both
// limits only get easier as backends are ejected, so a ring that builds
// with every backend also builds with any subset of them.
type Config struct {
	// Partitions is the number of key-space partitions; keys are assigned
	// to backends a partition at a time. Prefer a prime.
	Partitions int
	// ReplicationFactor is how many points each share (one unit of weight)
	// puts on the ring. The load bound caps the busiest backend but does
	// nothing for the idlest, whose share depends on these points (see
	// DefaultReplicationFactor for the measured trade-off).
	ReplicationFactor int
	// Load bounds the partitions a share may own to
	// ceil(Partitions/shares*Load).
	Load float64
}

// WithDefaults returns c with its zero fields set to the defaults and
// checks the result.
func (c Config) WithDefaults() (Config, error) {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.Load == 0 {
		c.Load = DefaultLoad
	}
	switch {
	case c.Partitions < MinPartitions || c.Partitions > MaxPartitions:
		return c, fmt.Errorf("ring: partitions %d out of range [%d, %d]", c.Partitions, MinPartitions, MaxPartitions)
	case c.ReplicationFactor < MinReplicationFactor || c.ReplicationFactor > MaxReplicationFactor:
		return c, fmt.Errorf("ring: replication factor %d out of range [%d, %d]", c.ReplicationFactor, MinReplicationFactor, MaxReplicationFactor)
	case math.IsNaN(c.Load) || math.IsInf(c.Load, 0) || c.Load < MinLoad:
		// NaN and +Inf would make the library's capacity NaN or Inf and
		// every comparison against it meaningless.
		return c, fmt.Errorf("ring: load %v must be a finite number >= %.1f", c.Load, MinLoad)
	}
	return c, nil
}
