package ring

import (
	"math"
	"strconv"
)

// libketama is libmemcached's weighted ketama (src/libmemcached/hosts.cc,
// update_continuum, and hash.cc): what php-memcached's
// OPT_LIBKETAMA_COMPATIBLE and pylibmc's ketama_weighted select. Its
// circle is twemproxy's (ketamaContinuum) with three differences: the
// server string is "<host>:<port>" with the port as a number, or the host
// alone on port 11211; the epsilon added before the floor is a float, not a
// double; and the key hash is always MD5 (the first four digest bytes,
// little-endian). With one server every key goes to it.
type libketama struct {
	points continuum
	tag    hashTag
	n      int
	opts   PlacementOptions
}

func newLibketama(servers []Server, o PlacementOptions, tag hashTag) (*libketama, error) {
	names, err := serverNames(DistLibketama, servers, func(_, host string, port int) string {
		if port == ketamaDefaultPort {
			return host
		}
		return host + ":" + strconv.Itoa(port) // "%s:%u", no brackets for IPv6
	})
	if err != nil {
		return nil, err
	}
	pps := func(pct float32, n int) int {
		// All float: pct * 160 / 4 * (float)live + 0.0000000001F.
		f := float32(float32(float32(float32(pct*ketamaPointsPerServer)/4)*float32(n)) + float32(0.0000000001))
		return int(math.Floor(float64(f))) * 4
	}
	pts := ketamaContinuum(names, servers, listOrder(len(servers)), pps, func(name string, i int) string {
		return name + "-" + strconv.Itoa(i)
	})
	return &libketama{points: pts, tag: tag, n: len(servers), opts: o}, nil
}

// Locate implements Placement.
func (l *libketama) Locate(key []byte) int {
	if l.n == 1 {
		return 0
	}
	return int(l.points[l.points.atOrAfter(hashMD5(l.tag.apply(key)))].server)
}

// AppendLocations implements Placement: the servers of the next points
// clockwise from the key's.
func (l *libketama) AppendLocations(dst []int, key []byte, n int) []int {
	if l.n == 1 {
		return appendOne(dst, n)
	}
	return l.points.appendFrom(dst, l.points.atOrAfter(hashMD5(l.tag.apply(key))), n)
}

// Len implements Placement.
func (l *libketama) Len() int { return l.n }

// Options implements Placement.
func (l *libketama) Options() PlacementOptions { return l.opts }
