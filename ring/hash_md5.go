package ring

import (
	"crypto/md5"
	"encoding/binary"
)

// hashMD5 is twemproxy's and libmemcached's md5 key hash: the first four
// bytes of the digest, little-endian.
func hashMD5(key []byte) uint32 {
	d := md5.Sum(key)
	return binary.LittleEndian.Uint32(d[:4])
}
