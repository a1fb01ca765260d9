package loadgen

import (
	"bytes"
	"strconv"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// AppendValue appends the value a set of key at version writes: "<key>:
// <version>:" padded with 'x' to size bytes, or cut to size when that is
// shorter (a value always begins with a prefix of its key).
func AppendValue[K string | []byte](dst []byte, key K, version uint64, size int) []byte {
	start := len(dst)
	dst = append(dst, key...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, ':')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst[:start+size]
}

// ParseValue returns the version in a value AppendValue wrote for key, or
// false if the value was not written for key (or was cut).
func ParseValue(key, value []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(value, key)
	if !ok || len(rest) == 0 || rest[0] != ':' {
		return 0, false
	}
	rest = rest[1:]
	i := bytes.IndexByte(rest, ':')
	if i <= 0 {
		return 0, false
	}
	return textclient.ParseUint(rest[:i], 1<<64-1)
}
