package ring

import (
	"errors"
	"fmt"
	"math"

	"github.com/buraksezer/consistent"
)

// ErrNoMembers is returned by New for an empty member list. A ring with no
// backend cannot answer Locate; the caller decides what "no backend" means
// (the proxy fails commands fast).
var ErrNoMembers = errors.New("ring: no members")

// Member is one backend on the ring.
type Member struct {
	// Name identifies the backend: the proxy's backend name, by default
	// its address (host:port). It is hashed onto the ring, so renaming a
	// backend moves its keys.
	Name string
	// Weight is the backend's relative share of the keys, MinWeight..MaxWeight;
	// 0 means DefaultWeight.
	Weight int
}

// Ring maps keys to members. It is immutable once built and safe for
// concurrent use without locks: a new backend list means a new Ring, built
// off the request path and swapped in by the caller.
type Ring struct {
	members []Member
	// owner[p] is the index into members of the backend owning partition
	// p. uint32 halves the table against int, so the default table is 31 KiB
	// and stays in L2.
	owner []uint32
	parts uint64
}

// New builds a ring of members. It fails on an empty list (ErrNoMembers),
// an empty or duplicate name, a weight outside 1..1000 and an invalid
// Config. The order of members fixes the indexes Locate returns but not
// where keys go.
func New(members []Member, cfg Config) (*Ring, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	ms, shares, err := expand(members, cfg.ReplicationFactor)
	if err != nil {
		return nil, err
	}
	c, err := buildConsistent(shares, cfg)
	if err != nil {
		return nil, err
	}
	r := &Ring{
		members: ms,
		owner:   make([]uint32, cfg.Partitions),
		parts:   uint64(cfg.Partitions),
	}
	for p := range r.owner {
		s, ok := c.GetPartitionOwner(p).(share)
		if !ok {
			// Cannot happen after a successful distribution; refuse a ring
			// with holes rather than route keys to member 0.
			return nil, fmt.Errorf("ring: library left partition %d without an owner", p)
		}
		r.owner[p] = uint32(s.backend)
	}
	return r, nil
}

// buildConsistent runs the library on the shares. The library panics
// instead of returning errors (nil hasher, "not enough room to distribute
// partitions"); the capacity check below rules the known panic out, and
// the recover turns any other into an error so that a bad config reload
// cannot take the proxy down.
func buildConsistent(shares []consistent.Member, cfg Config) (c *consistent.Consistent, err error) {
	// The library's per-share capacity, computed exactly as it does. With
	// Load >= 1 it always covers every partition; keep the check so the
	// error is clear if the validation above is ever loosened.
	capacity := math.Ceil(float64(cfg.Partitions) / float64(len(shares)) * cfg.Load)
	if capacity*float64(len(shares)) < float64(cfg.Partitions) {
		return nil, fmt.Errorf("ring: load %v is too small for %d partitions over %d shares", cfg.Load, cfg.Partitions, len(shares))
	}
	defer func() {
		if v := recover(); v != nil {
			c, err = nil, fmt.Errorf("ring: consistent: %v", v)
		}
	}()
	return consistent.New(shares, consistent.Config{
		Hasher:            xxHasher{},
		PartitionCount:    cfg.Partitions,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	}), nil
}

// Locate returns the index into Members of the backend that owns key. It is
// the hot path: one xxhash, one modulo, one table load; no locks, no
// allocations. The partition is computed exactly as the library's
// FindPartitionID does, which is what makes the table valid.
func (r *Ring) Locate(key []byte) int {
	return int(r.owner[hashKey(key)%r.parts])
}

// LocateName returns the name of the backend that owns key.
func (r *Ring) LocateName(key []byte) string {
	return r.members[r.Locate(key)].Name
}

// Members returns the members in the order given to New, with weights
// normalised (0 became 1). It returns a copy, so the ring stays immutable
// whatever the caller does with it; call it once per ring, not per key.
func (r *Ring) Members() []Member {
	return append([]Member(nil), r.members...)
}

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }
