package ring

// hashHsieh is Paul Hsieh's SuperFastHash as twemproxy has it
// (nc_hsieh.c). 16-bit reads are little-endian and unsigned, but the third
// byte of a 3-byte tail is read as a signed char.
func hashHsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	get16 := func(b []byte) uint32 { return uint32(b[1])<<8 + uint32(b[0]) }
	var h uint32
	rem := len(key) & 3
	k := key
	for n := len(key) >> 2; n > 0; n-- {
		h += get16(k)
		tmp := get16(k[2:])<<11 ^ h
		h = h<<16 ^ tmp
		k = k[4:]
		h += h >> 11
	}
	switch rem {
	case 3:
		h += get16(k)
		h ^= h << 16
		h ^= signed(k[2]) << 18
		h += h >> 11
	case 2:
		h += get16(k)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(k[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}
