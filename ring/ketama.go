package ring

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ketama is twemproxy 0.5.0's ketama distribution (src/hashkit/nc_ketama.c
// and server_pool_idx in src/nc_server.c). Each server puts points on a
// circle of 2^32 in proportion to its weight: 160 per server on average,
// four from each MD5 digest of "<server>-<i>". A key's hash picks the
// first point at or after it (past the last point, the first; among equal
// points, that of the server first in TwemproxyOrder). The server string is
// the backend's name if it has one, else host:port as written, or the host
// alone when the port is 11211 (libmemcached's rule, kept for
// compatibility).
type ketama struct {
	points continuum
	hash   func([]byte) uint32
	tag    hashTag
	n      int
	opts   PlacementOptions
}

// ketamaPointsPerServer is KETAMA_POINTS_PER_SERVER (and libmemcached's
// MEMCACHED_POINTS_PER_SERVER_KETAMA): the average points of a server.
const ketamaPointsPerServer = 160

// ketamaMaxHostLen is KETAMA_MAX_HOSTLEN: snprintf truncates "<server>-<i>"
// to one byte less.
const ketamaMaxHostLen = 273

// ketamaDefaultPort is the port whose servers hash as the host alone.
const ketamaDefaultPort = 11211

// twemproxyNames returns the strings twemproxy knows servers by, as
// conf_add_server: a server's name, else host:port with the port text as
// written, or the host alone when the port's number is 11211.
func twemproxyNames(servers []Server) ([]string, error) {
	return serverNames(DistKetama, servers, func(addr, host string, port int) string {
		if port == ketamaDefaultPort {
			return host
		}
		return addr
	})
}

// twemproxyLess is twemproxy's string_compare: the shorter string first,
// then byte by byte.
func twemproxyLess(a, b string) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// TwemproxyOrder returns the indexes of servers in the order twemproxy
// 0.5.0 keeps a pool's servers in: it sorts them by name (twemproxyNames;
// shorter names first, then bytes) when it checks the config for
// duplicates (conf_validate_server), and that order, not the order of the
// config file, is what its modula distribution counts in and what breaks
// ketama's ties. Ketama applies it itself; a modula pool converted from
// twemproxy must list its backends in this order.
func TwemproxyOrder(servers []Server) ([]int, error) {
	names, err := twemproxyNames(servers)
	if err != nil {
		return nil, err
	}
	return twemproxyOrder(names), nil
}

// twemproxyOrder sorts the indexes of names as twemproxy sorts servers.
func twemproxyOrder(names []string) []int {
	order := listOrder(len(names))
	slices.SortStableFunc(order, func(a, b int) int { return twemproxyLess(names[a], names[b]) })
	return order
}

func newKetama(servers []Server, o PlacementOptions, tag hashTag) (*ketama, error) {
	names, err := twemproxyNames(servers)
	if err != nil {
		return nil, err
	}
	order := twemproxyOrder(names)
	pps := func(pct float32, n int) int {
		// nc_ketama.c computes in float, then adds a double epsilon,
		// which promotes the sum to double before (float) and floorf
		// bring it back.
		f := float32(float32(float32(pct*ketamaPointsPerServer)/4) * float32(n))
		return int(math.Floor(float64(float32(float64(f)+0.0000000001)))) * 4
	}
	pts := ketamaContinuum(names, servers, order, pps, func(name string, i int) string {
		s := name + "-" + strconv.Itoa(i)
		if len(s) >= ketamaMaxHostLen {
			s = s[:ketamaMaxHostLen-1]
		}
		return s
	})
	return &ketama{points: pts, hash: keyHashes[o.Hash], tag: tag, n: len(servers), opts: o}, nil
}

// ketamaContinuum builds the weighted ketama circle shared by twemproxy
// and libmemcached: for server s of weight w, pointsPer(w/total, servers)
// points, four from the MD5 digest of each pointName(name, i), i = 0, 1,
// ..., each point the digest's next four bytes, little-endian. The points
// are made server by server in order (the indexes of servers), which
// decides ties.
func ketamaContinuum(names []string, servers []Server, order []int, pointsPer func(pct float32, n int) int, pointName func(string, int) string) continuum {
	total := 0
	for _, s := range servers {
		total += weightOf(s)
	}
	var ps []point
	for _, si := range order {
		s := servers[si]
		pct := float32(weightOf(s)) / float32(total)
		for i := 0; i < pointsPer(pct, len(servers))/4; i++ {
			d := md5.Sum([]byte(pointName(names[si], i)))
			for x := 0; x < 4; x++ {
				ps = append(ps, point{value: binary.LittleEndian.Uint32(d[4*x:]), server: uint32(si)})
			}
		}
	}
	return sortPoints(ps)
}

// keyHash is server_pool_hash: one server needs no hash, an empty key
// hashes to 0.
func (k *ketama) keyHash(key []byte) uint32 {
	key = k.tag.apply(key)
	if len(key) == 0 {
		return 0
	}
	return k.hash(key)
}

// Locate implements Placement.
func (k *ketama) Locate(key []byte) int {
	if k.n == 1 {
		return 0
	}
	return int(k.points[k.points.atOrAfter(k.keyHash(key))].server)
}

// AppendLocations implements Placement: the servers of the next points
// clockwise from the key's.
func (k *ketama) AppendLocations(dst []int, key []byte, n int) []int {
	if k.n == 1 {
		return appendOne(dst, n)
	}
	return k.points.appendFrom(dst, k.points.atOrAfter(k.keyHash(key)), n)
}

// Len implements Placement.
func (k *ketama) Len() int { return k.n }

// Options implements Placement.
func (k *ketama) Options() PlacementOptions { return k.opts }

// appendOne is AppendLocations of a one-server placement.
func appendOne(dst []int, n int) []int {
	if n < 1 {
		return dst
	}
	return append(dst, 0)
}
