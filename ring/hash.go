package ring

import "slices"

// Key hash names, as twemproxy's hash: setting spells them. Every one is
// twemproxy 0.5.0's own function (src/hashkit), which for most of them is
// libmemcached's, bugs included: fnv1a_64 is 32-bit arithmetic from a
// truncated 64-bit offset basis, crc32 keeps 15 bits, and the FNV and
// one_at_a_time functions sign-extend key bytes above 0x7f, because C's
// char is signed on the platforms those programs run on.
const (
	HashOneAtATime = "one_at_a_time"
	HashMD5        = "md5"
	HashCRC16      = "crc16"
	HashCRC32      = "crc32"
	HashCRC32a     = "crc32a"
	HashFNV1_64    = "fnv1_64"
	HashFNV1a64    = "fnv1a_64"
	HashFNV1_32    = "fnv1_32"
	HashFNV1a32    = "fnv1a_32"
	HashHsieh      = "hsieh"
	HashMurmur     = "murmur"
	HashJenkins    = "jenkins"
)

// keyHashes maps each hash name to its function. A function takes the key
// bytes as given (after the hash tag) and never allocates.
var keyHashes = map[string]func([]byte) uint32{
	HashOneAtATime: hashOneAtATime,
	HashMD5:        hashMD5,
	HashCRC16:      hashCRC16,
	HashCRC32:      hashCRC32,
	HashCRC32a:     hashCRC32a,
	HashFNV1_64:    hashFNV1_64,
	HashFNV1a64:    hashFNV1a64,
	HashFNV1_32:    hashFNV1_32,
	HashFNV1a32:    hashFNV1a32,
	HashHsieh:      hashHsieh,
	HashMurmur:     hashMurmur,
	HashJenkins:    hashJenkins,
}

// HashNames lists the key hash names PlacementOptions.Hash accepts, sorted.
func HashNames() []string {
	names := make([]string, 0, len(keyHashes))
	for n := range keyHashes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// signed returns a key byte as C code reading a (signed) char and widening
// it sees it: bytes above 0x7f become negative, so their high bits are set.
func signed(b byte) uint32 { return uint32(int32(int8(b))) }
