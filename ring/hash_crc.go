package ring

import "hash/crc32"

// twemproxy's CRC hashes (src/hashkit/nc_crc32.c, nc_crc16.c).

// hashCRC32a is the standard CRC-32 (IEEE), as zlib, Go's hash/crc32,
// Dalli and gomemcache compute it.
func hashCRC32a(key []byte) uint32 { return crc32.ChecksumIEEE(key) }

// hashCRC32 is libmemcached's "crc": bits 16..30 of the standard CRC-32,
// so only 32768 values.
func hashCRC32(key []byte) uint32 { return crc32.ChecksumIEEE(key) >> 16 & 0x7fff }

// crc16Table is the CRC-16/CCITT (polynomial 0x1021, not reflected) table
// of nc_crc16.c.
var crc16Table = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 8
		for j := 0; j < 8; j++ {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c & 0xffff
	}
	return t
}()

// hashCRC16 is twemproxy's crc16, which keeps its state in 32 bits and
// never masks it to 16: the high bits it shifts up stay in the result.
func hashCRC16(key []byte) uint32 {
	var c uint32
	for _, b := range key {
		c = c<<8 ^ crc16Table[(c>>8^uint32(b))&0xff]
	}
	return c
}
