package ring

// twemproxy's FNV hashes (src/hashkit/nc_fnv.c), which are libmemcached's.
// Key bytes are widened from signed char, so a byte above 0x7f XORs in
// set high bits (see signed).

const (
	fnv64Init  = 0xcbf29ce484222325
	fnv64Prime = 0x100000001b3
	fnv32Init  = 2166136261
	fnv32Prime = 16777619
)

// hashFNV1_64 is FNV-1 in 64 bits, truncated to its low 32.
func hashFNV1_64(key []byte) uint32 {
	h := uint64(fnv64Init)
	for _, b := range key {
		h *= fnv64Prime
		h ^= uint64(int64(int8(b)))
	}
	return uint32(h)
}

// hashFNV1a64 is twemproxy's default hash. Despite its name it runs in 32
// bits, from the low halves of the 64-bit offset basis and prime.
func hashFNV1a64(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h ^= signed(b)
		h *= uint32(fnv64Prime & 0xffffffff)
	}
	return h
}

// hashFNV1_32 is FNV-1 in 32 bits.
func hashFNV1_32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h *= fnv32Prime
		h ^= signed(b)
	}
	return h
}

// hashFNV1a32 is FNV-1a in 32 bits.
func hashFNV1a32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h ^= signed(b)
		h *= fnv32Prime
	}
	return h
}
