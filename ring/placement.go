package ring

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Placement maps a key to an ordered list of distinct backends: the first
// is the key's home, the next ones are where its copies go. Backends are
// named by their index in the list given to NewPlacement.
//
// A Placement is immutable once built and safe for concurrent use without
// locks by any number of goroutines (every event loop reads the same one): a
// new backend list or new options mean a new Placement, built off the data
// path and swapped in by its owner. Locate and AppendLocations do not
// allocate.
type Placement interface {
	// Locate returns the index of key's home backend.
	Locate(key []byte) int
	// AppendLocations appends to dst up to n distinct backend indexes for
	// key, home first, then where its copies go, and returns the extended
	// slice. It appends fewer than n when the placement has fewer backends
	// that can own keys (a backend whose weight earns it no point on a
	// continuum owns none). Pass a reused dst[:0] to stay allocation free.
	AppendLocations(dst []int, key []byte, n int) []int
	// Len returns the number of backends, the bound of the indexes above.
	Len() int
	// Options returns the options the placement was built with, with the
	// defaults filled in: what `mcproxy -check` prints and what a reload
	// compares.
	Options() PlacementOptions
}

// Distribution names, as the config's pools[].distribution spells them.
const (
	// DistRing is mcproxy's own bounded-load consistent hashing (Ring),
	// the default.
	DistRing = "ring"
	// DistKetama is twemproxy 0.5.0's ketama (ketama.go).
	DistKetama = "ketama"
	// DistLibketama is libmemcached's weighted ketama (libketama.go), as
	// php-memcached's OPT_LIBKETAMA_COMPATIBLE and pylibmc's
	// ketama_weighted select it.
	DistLibketama = "libketama"
	// DistDalli is the ring of Ruby's Dalli client (dalli.go).
	DistDalli = "dalli"
	// DistModula is twemproxy's modula (modula.go); with hash crc32a it is
	// gomemcache's ServerList.
	DistModula = "modula"
)

// Distributions lists the distribution names NewPlacement accepts, the
// default first.
func Distributions() []string {
	return []string{DistRing, DistKetama, DistLibketama, DistDalli, DistModula}
}

// DefaultHash is the key hash of ketama and modula when none is given:
// twemproxy's default.
const DefaultHash = HashFNV1a64

// PlacementOptions chooses a placement and tunes it. The zero value is
// DistRing with the default Config.
type PlacementOptions struct {
	// Distribution is one of Distributions(); "" means DistRing.
	Distribution string
	// Hash is the key hash of DistKetama and DistModula, one of
	// HashNames(); "" means DefaultHash. The other distributions have a
	// fixed key hash (xxhash, MD5, CRC-32) and refuse any other value.
	Hash string
	// HashTag is "" or two bytes, as twemproxy's hash_tag: when a key holds
	// the first byte and, after it, the second, with at least one byte
	// between them, only the bytes between them are hashed.
	HashTag string
	// Ring tunes DistRing; the other distributions refuse a non-zero one.
	Ring Config
}

// withDefaults checks o and fills in its defaults.
func (o PlacementOptions) withDefaults() (PlacementOptions, error) {
	if o.Distribution == "" {
		o.Distribution = DistRing
	}
	if !slices.Contains(Distributions(), o.Distribution) {
		return o, fmt.Errorf("ring: unknown distribution %q, want one of %s", o.Distribution, strings.Join(Distributions(), ", "))
	}
	switch o.Distribution {
	case DistKetama, DistModula:
		if o.Hash == "" {
			o.Hash = DefaultHash
		}
		if keyHashes[o.Hash] == nil {
			return o, fmt.Errorf("ring: unknown hash %q, want one of %s", o.Hash, strings.Join(HashNames(), ", "))
		}
	default:
		if o.Hash != "" {
			return o, fmt.Errorf("ring: distribution %s has a fixed key hash; hash %q applies only to %s and %s", o.Distribution, o.Hash, DistKetama, DistModula)
		}
	}
	if o.HashTag != "" && len(o.HashTag) != 2 {
		return o, fmt.Errorf("ring: hash tag %q must be two bytes, such as \"{}\"", o.HashTag)
	}
	if o.Distribution == DistRing {
		c, err := o.Ring.WithDefaults()
		if err != nil {
			return o, err
		}
		o.Ring = c
	} else if o.Ring != (Config{}) {
		return o, fmt.Errorf("ring: distribution %s takes no ring settings (partitions, replication factor, load)", o.Distribution)
	}
	return o, nil
}

// Server is one backend as NewPlacement sees it.
type Server struct {
	// Name is the backend's name (backends[].name), or "". When set it is
	// the backend's identity on every distribution that hashes servers:
	// give it the spelling the client used ("cache1:11211" for Dalli,
	// "cache1" for a libketama server on port 11211) to match a client
	// whose host names differ from the proxy's addresses.
	Name string
	// Addr is the backend's host:port.
	Addr string
	// Weight is the backend's relative share of the keys,
	// MinWeight..MaxWeight; 0 means DefaultWeight.
	Weight int
}

// NewPlacement builds the placement o chooses over servers. Indexes follow
// the order of servers. It fails on an empty list, a bad address or
// weight, options that do not fit the distribution, and two servers that
// the distribution would hash the same way.
func NewPlacement(servers []Server, o PlacementOptions) (Placement, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, ErrNoMembers
	}
	for i, s := range servers {
		if s.Addr == "" {
			return nil, fmt.Errorf("ring: server %d has an empty address", i)
		}
		if s.Weight != 0 && (s.Weight < MinWeight || s.Weight > MaxWeight) {
			return nil, fmt.Errorf("ring: server %q has weight %d, want %d..%d", s.Addr, s.Weight, MinWeight, MaxWeight)
		}
	}
	tag := hashTag(o.HashTag)
	switch o.Distribution {
	case DistKetama:
		return newKetama(servers, o, tag)
	case DistLibketama:
		return newLibketama(servers, o, tag)
	case DistDalli:
		return newDalli(servers, o, tag)
	case DistModula:
		return newModula(servers, o, tag)
	default:
		return newRingPlacement(servers, o, tag)
	}
}

// weightOf returns s's weight with the default applied.
func weightOf(s Server) int {
	if s.Weight == 0 {
		return DefaultWeight
	}
	return s.Weight
}

// identity returns the string a server is known by when none of the
// distribution's own rules apply: its name, else its address.
func identity(s Server) string {
	if s.Name != "" {
		return s.Name
	}
	return s.Addr
}

// splitHostPort splits a backend address; the port must be a number.
func splitHostPort(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("ring: server address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("ring: server address %q: port %q is not a number in 0..65535", addr, p)
	}
	return h, n, nil
}

// serverNames returns the string each server is hashed as: its name if
// it has one, else what fromAddr makes of its host and port (the
// distribution's own rule), failing if the address does not split or two
// servers get the same string.
func serverNames(dist string, servers []Server, fromAddr func(addr, host string, port int) string) ([]string, error) {
	names := make([]string, len(servers))
	for i, s := range servers {
		if s.Name != "" {
			names[i] = s.Name
			continue
		}
		host, port, err := splitHostPort(s.Addr)
		if err != nil {
			return nil, err
		}
		names[i] = fromAddr(s.Addr, host, port)
	}
	if err := checkDistinct(dist, names); err != nil {
		return nil, err
	}
	return names, nil
}

// checkDistinct fails when two servers get the same string to hash: they
// would put their points in the same places, and one of them would own no
// key.
func checkDistinct(dist string, names []string) error {
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if j, ok := seen[n]; ok {
			return fmt.Errorf("ring: %s: servers %d and %d are both hashed as %q; give them distinct names", dist, j, i, n)
		}
		seen[n] = i
	}
	return nil
}

// appendDistinct appends idx to dst unless dst already holds it; dst is a
// handful of entries long, so a scan beats any set.
func appendDistinct(dst []int, start, idx int) []int {
	for _, d := range dst[start:] {
		if d == idx {
			return dst
		}
	}
	return append(dst, idx)
}
