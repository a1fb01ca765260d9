package protocol

import "encoding/base64"

// Base64 keys of the meta protocol (the b flag). memcached's decoder
// (base64.c) is lenient in its own way, and the proxy must decode a key
// exactly as memcached does, since the decoded bytes decide both the item
// and the backend: bytes outside the alphabet are skipped, the alphabet
// characters (padding included) must come in whole quads, and decoding stops
// after the first quad holding padding. Its encoder is standard base64 with
// padding, which is how memcached echoes a binary key back (k flag).

// b64Invalid marks a byte outside memcached's decoding table.
const b64Invalid = 0x80

var b64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Invalid
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// decodeBase64Key decodes src into dst the way memcached's base64_decode
// does and returns the decoded length; 0 means memcached refuses the key.
// dst must hold len(src)/4*3 bytes.
func decodeBase64Key(dst, src []byte) int {
	count := 0
	for _, c := range src {
		if b64Table[c] != b64Invalid {
			count++
		}
	}
	if count == 0 || count%4 != 0 || count/4*3 > len(dst) {
		return 0
	}
	var block [4]byte
	pos, n, pad := 0, 0, 0
	for _, c := range src {
		v := b64Table[c]
		if v == b64Invalid {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = v
		if n++; n < 4 {
			continue
		}
		dst[pos] = block[0]<<2 | block[1]>>4
		dst[pos+1] = block[1]<<4 | block[2]>>2
		dst[pos+2] = block[2]<<6 | block[3]
		pos += 3
		n = 0
		if pad > 0 {
			if pad > 2 {
				return 0 // invalid padding
			}
			pos -= pad
			break
		}
	}
	return pos
}

// appendBase64Key appends key encoded as memcached encodes a binary key.
func appendBase64Key(dst, key []byte) []byte {
	return base64.StdEncoding.AppendEncode(dst, key)
}
