package failover

import (
	"bytes"
	"strconv"

	"github.com/mcproxy/mcproxy/internal/mctext"
)

// Values stored by this package are "<key>:<version>:" padded with 'x' to
// the value size; the version tells which set wrote the value (0 for the
// prefill), and the key shows that a reply belongs to the key asked for.

// appendValue appends the value for key at version to dst.
func appendValue(dst []byte, key string, version uint64, size int) []byte {
	start := len(dst)
	dst = append(dst, key...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, ':')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parseValue returns the version in a value written for key, or false if
// the value was not written for key.
func parseValue(key, value []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(value, key)
	if !ok || len(rest) == 0 || rest[0] != ':' {
		return 0, false
	}
	rest = rest[1:]
	i := bytes.IndexByte(rest, ':')
	if i <= 0 {
		return 0, false
	}
	return mctext.ParseUint(rest[:i], 1<<64-1)
}
