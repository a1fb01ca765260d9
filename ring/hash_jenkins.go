package ring

import "math/bits"

// hashOneAtATime is Bob Jenkins' one-at-a-time hash as twemproxy has it
// (nc_one_at_a_time.c), key bytes widened from signed char.
func hashOneAtATime(key []byte) uint32 {
	var v uint32
	for _, b := range key {
		v += signed(b)
		v += v << 10
		v ^= v >> 6
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	return v
}

// hashJenkins is lookup3's hashlittle with initval 13 (nc_jenkins.c). The
// C code reads aligned words when it can; on a little-endian machine every
// path gives the result of the byte-at-a-time one, written here. Bytes are
// unsigned.
func hashJenkins(key []byte) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + 13
	b, c := a, a
	k := key
	for len(k) > 12 {
		a += uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
		b += uint32(k[4]) | uint32(k[5])<<8 | uint32(k[6])<<16 | uint32(k[7])<<24
		c += uint32(k[8]) | uint32(k[9])<<8 | uint32(k[10])<<16 | uint32(k[11])<<24
		// mix(a,b,c)
		a -= c
		a ^= bits.RotateLeft32(c, 4)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 6)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 8)
		b += a
		a -= c
		a ^= bits.RotateLeft32(c, 16)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 19)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 4)
		b += a
		k = k[12:]
	}
	if len(k) == 0 {
		return c // zero-length keys need no mixing
	}
	// The last block, 1..12 bytes: the C switch falls through from
	// case len(k) down to case 1.
	var w [12]byte
	copy(w[:], k)
	a += uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16 | uint32(w[3])<<24
	b += uint32(w[4]) | uint32(w[5])<<8 | uint32(w[6])<<16 | uint32(w[7])<<24
	c += uint32(w[8]) | uint32(w[9])<<8 | uint32(w[10])<<16 | uint32(w[11])<<24
	// final(a,b,c)
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}
