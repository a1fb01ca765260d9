package ring

import "github.com/cespare/xxhash/v2"

// xxHasher is the consistent.Hasher the ring is built with. The same
// function hashes keys in Locate: the build-time table is only valid
// because both sides agree on it, so it lives in one place.
type xxHasher struct{}

// Sum64 implements consistent.Hasher.
func (xxHasher) Sum64(b []byte) uint64 { return hashKey(b) }

// hashKey is the key hash of the whole package. xxhash is fast on short
// keys (memcached keys are at most 250 bytes), allocation free, and stable
// across versions and platforms, which the pinned mappings rely on.
func hashKey(b []byte) uint64 { return xxhash.Sum64(b) }
