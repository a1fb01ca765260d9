package ring

import (
	"crypto/sha1"
	"encoding/binary"
	"hash/crc32"
	"math"
	"strconv"
)

// dalli is the ring of Ruby's Dalli client (lib/dalli/ring.rb, unchanged
// from 3.0 to 5.0). Server s of weight w puts
// floor(servers * 160 * w / total weight) points on a circle of 2^32, the
// i-th the first four bytes (big-endian) of SHA1("<server>:<i>"). A key's
// CRC-32 picks the last point at or below it (below the first point, the
// last). The server string is the backend's name if it has one, else
// Dalli's "#{hostname}:#{port}": host, colon, port as a number, even when it
// is 11211, and an IPv6 host without brackets. With one server every key goes to it.
//
// Dalli retries a key on another server when its own is down, by hashing
// "<try><key>"; that failover is the client's, and not part of the
// placement.
type dalli struct {
	points continuum
	tag    hashTag
	n      int
	opts   PlacementOptions
}

// dalliPointsPerServer is Dalli::Ring::POINTS_PER_SERVER.
const dalliPointsPerServer = 160

func newDalli(servers []Server, o PlacementOptions, tag hashTag) (*dalli, error) {
	names, err := serverNames(DistDalli, servers, func(_, host string, port int) string {
		return host + ":" + strconv.Itoa(port)
	})
	if err != nil {
		return nil, err
	}
	total := 0
	for _, s := range servers {
		total += weightOf(s)
	}
	var ps []point
	for si, s := range servers {
		// Ruby: ((total_servers * POINTS_PER_SERVER * server.weight) /
		// Float(total_weight)).floor, an integer product over a double.
		count := int(math.Floor(float64(len(servers)*dalliPointsPerServer*weightOf(s)) / float64(total)))
		for i := 0; i < count; i++ {
			d := sha1.Sum([]byte(names[si] + ":" + strconv.Itoa(i)))
			ps = append(ps, point{value: binary.BigEndian.Uint32(d[:4]), server: uint32(si)})
		}
	}
	return &dalli{points: sortPoints(ps), tag: tag, n: len(servers), opts: o}, nil
}

// Locate implements Placement.
func (d *dalli) Locate(key []byte) int {
	if d.n == 1 {
		return 0
	}
	return int(d.points[d.points.atOrBelow(crc32.ChecksumIEEE(d.tag.apply(key)))].server)
}

// AppendLocations implements Placement: the key's server, then those of
// the next points clockwise.
func (d *dalli) AppendLocations(dst []int, key []byte, n int) []int {
	if d.n == 1 {
		return appendOne(dst, n)
	}
	return d.points.appendFrom(dst, d.points.atOrBelow(crc32.ChecksumIEEE(d.tag.apply(key))), n)
}

// Len implements Placement.
func (d *dalli) Len() int { return d.n }

// Options implements Placement.
func (d *dalli) Options() PlacementOptions { return d.opts }
