package ring

import "encoding/binary"

// hashMurmur is MurmurHash2 as twemproxy has it (nc_murmur.c): the seed
// is 0xdeadbeef times the length, words are read little-endian and bytes
// are unsigned.
func hashMurmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := 0xdeadbeef*n ^ n
	k := key
	for len(k) >= 4 {
		w := binary.LittleEndian.Uint32(k)
		w *= m
		w ^= w >> 24
		w *= m
		h *= m
		h ^= w
		k = k[4:]
	}
	switch len(k) {
	case 3:
		h ^= uint32(k[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(k[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(k[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
