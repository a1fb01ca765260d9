package protocol

import (
	"bytes"
	"math"
)

// The number parsers below reproduce memcached's safe_strtoul, safe_strtol
// and safe_strtoull (util.c) on top of C's strtoul/strtol/strtoull. mcproxy
// must accept exactly the numbers memcached accepts: a line the proxy takes
// but memcached would refuse could otherwise desynchronise a connection.
// Their quirks are deliberate: leading white space and a sign are allowed,
// any white space after the digits ends the number (so "5\tx" is 5), and a
// 64-bit result is truncated to 32 bits without a range check.

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// cstrto parses like C's strtoull/strtoll in base 10. It returns the
// magnitude, whether a minus sign was seen, how many bytes were consumed, and
// whether the magnitude overflowed limit.
func cstrto(s []byte, limit uint64) (mag uint64, neg bool, end int, overflow bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if !overflow {
			if mag > (limit-d)/10 {
				overflow = true
			} else {
				mag = mag*10 + d
			}
		}
		i++
	}
	if i == start { // no digits: strtol sets endptr to the start of the string
		return 0, false, 0, false
	}
	return mag, neg, i, overflow
}

// numberEnds reports whether a parse that stopped at end is accepted:
// memcached requires the next byte to be white space or the end of token.
func numberEnds(s []byte, end int) bool {
	if end == 0 {
		return false
	}
	return end == len(s) || isCSpace(s[end])
}

// parseUint32 is memcached's safe_strtoul on an LP64 system, where
// unsigned long is 64 bits: safe_strtoull's checks, truncated to 32 bits.
func parseUint32(s []byte) (uint32, bool) {
	l, ok := parseUint64(s)
	return uint32(l), ok
}

// parseInt32 is memcached's safe_strtol on an LP64 system: strtol's long is
// 64 bits and the result is truncated to 32 without a check.
func parseInt32(s []byte) (int32, bool) {
	mag, neg, end, overflow := cstrto(s, math.MaxInt64+1)
	if !numberEnds(s, end) {
		return 0, false
	}
	if overflow || (!neg && mag > math.MaxInt64) {
		return 0, false // ERANGE
	}
	v := int64(mag)
	if neg {
		v = int64(-mag) // -(1<<63) wraps to itself, as strtol returns LONG_MIN
	}
	return int32(v), true
}

// parseUint64 is memcached's safe_strtoull.
func parseUint64(s []byte) (uint64, bool) {
	mag, neg, end, overflow := cstrto(s, math.MaxUint64)
	if overflow || !numberEnds(s, end) {
		return 0, false
	}
	l := mag
	if neg {
		l = -mag
	}
	// memcached refuses a minus sign only when the wrapped value looks
	// negative, so "-0" is 0 and "-1" is an error.
	if int64(l) < 0 && bytes.IndexByte(s, '-') >= 0 {
		return 0, false
	}
	return l, true
}
