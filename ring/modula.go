package ring

// modula is twemproxy's modula distribution (src/hashkit/nc_modula.c):
// each server appears weight times in a list, in server order, and a key
// goes to entry hash(key) mod the list's length. One server takes every
// key, and an empty key hashes to 0. With hash crc32a and weights 1 it is
// gomemcache's ServerList (crc32.ChecksumIEEE(key) % len(servers)) and the
// "crc32(key) % N" of countless applications; gomemcache's way to weigh a
// server, listing it again, matches a weight only when the copies are
// listed next to each other. The list follows the order of the servers as
// given, as gomemcache's and libmemcached's do; twemproxy counts in its
// own order instead, which TwemproxyOrder gives.
type modula struct {
	list []uint32 // server index of each entry
	hash func([]byte) uint32
	tag  hashTag
	n    int
	opts PlacementOptions
}

func newModula(servers []Server, o PlacementOptions, tag hashTag) (*modula, error) {
	names := make([]string, len(servers))
	var list []uint32
	for i, s := range servers {
		names[i] = identity(s)
		for w := 0; w < weightOf(s); w++ {
			list = append(list, uint32(i))
		}
	}
	// The names are not hashed, but two entries for one backend would be
	// a config mistake, not a weight.
	if err := checkDistinct(DistModula, names); err != nil {
		return nil, err
	}
	return &modula{list: list, hash: keyHashes[o.Hash], tag: tag, n: len(servers), opts: o}, nil
}

// entry returns the list entry of key.
func (m *modula) entry(key []byte) int {
	key = m.tag.apply(key)
	if len(key) == 0 {
		return 0
	}
	return int(m.hash(key) % uint32(len(m.list)))
}

// Locate implements Placement.
func (m *modula) Locate(key []byte) int {
	if m.n == 1 {
		return 0
	}
	return int(m.list[m.entry(key)])
}

// AppendLocations implements Placement: the key's server, then the
// servers of the following entries of the list, wrapping around.
func (m *modula) AppendLocations(dst []int, key []byte, n int) []int {
	if m.n == 1 {
		return appendOne(dst, n)
	}
	start := len(dst)
	e := m.entry(key)
	for step := 0; step < len(m.list) && len(dst)-start < n; step++ {
		dst = appendDistinct(dst, start, int(m.list[e]))
		if e++; e == len(m.list) {
			e = 0
		}
	}
	return dst
}

// Len implements Placement.
func (m *modula) Len() int { return m.n }

// Options implements Placement.
func (m *modula) Options() PlacementOptions { return m.opts }
