package ring

import "bytes"

// hashTag is twemproxy's hash_tag: two bytes, or none. It is a value type
// inside every placement, so applying it costs a branch when unset.
type hashTag string

// apply returns the part of key a placement hashes. As twemproxy's
// server_pool_idx: find the first opening byte, then the first closing byte
// after it; if there is at least one byte between them, hash only those
// bytes, else the whole key. The result aliases key.
func (t hashTag) apply(key []byte) []byte {
	if len(t) != 2 {
		return key
	}
	open := bytes.IndexByte(key, t[0])
	if open < 0 {
		return key
	}
	n := bytes.IndexByte(key[open+1:], t[1])
	if n < 1 { // absent, or nothing between the tags
		return key
	}
	return key[open+1 : open+1+n]
}
