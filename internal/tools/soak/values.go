package soak

import (
	"bytes"
	"strconv"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// A register value is "<key>:<writer>:<version>:" followed by padding up to
// the value size, where the padding byte at offset i is 'a'+(version+i)%26.
// It names the key it was written for (a value that comes back for another
// key is caught), the connection that wrote it (also the item's flags) and
// the per-key version the checker assigned when the write was sent. The
// padding depends on the version, so a torn or mixed-up data block does not
// pass for a real one.

// appendRegisterValue appends the value of key at version, written by
// writer, padded to size bytes, to dst.
func appendRegisterValue(dst []byte, key string, writer int, version uint64, size int) []byte {
	start := len(dst)
	dst = append(dst, key...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(writer), 10)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, ':')
	for i := len(dst) - start; i < size; i++ {
		dst = append(dst, byte('a'+(version+uint64(i))%26))
	}
	return dst
}

// parseRegisterValue returns the writer and version encoded in a value
// read for key, or ok=false if the value is not one appendRegisterValue
// makes for key with size.
func parseRegisterValue(key string, data []byte, size int) (writer int, version uint64, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(key))
	if !found || len(rest) == 0 || rest[0] != ':' {
		return 0, 0, false
	}
	rest = rest[1:]
	w, rest, found := bytes.Cut(rest, []byte(":"))
	if !found {
		return 0, 0, false
	}
	wv, okw := textclient.ParseUint(w, 1<<31-1)
	v, rest, found := bytes.Cut(rest, []byte(":"))
	if !found || !okw {
		return 0, 0, false
	}
	version, okv := textclient.ParseUint(v, 1<<63)
	if !okv || version == 0 {
		return 0, 0, false
	}
	off := len(data) - len(rest)
	if len(data) != max(size, off) {
		return 0, 0, false
	}
	for i, c := range rest {
		if c != byte('a'+(version+uint64(off+i))%26) {
			return 0, 0, false
		}
	}
	return int(wv), version, true
}

// A counter's value is epoch*epochScale + count. Every add that creates the
// counter (it starts missing, and is lost when its backend dies) uses a new
// per-key epoch, and incr adds 1; so the epoch tells which add created the
// item, and within one epoch the count only ever grows.
const epochScale = 1_000_000_000

// counterValue returns the value an add of epoch stores.
func counterValue(epoch uint64) uint64 { return epoch * epochScale }

// splitCounter splits a counter value into its epoch and count.
func splitCounter(v uint64) (epoch, count uint64) { return v / epochScale, v % epochScale }

// parseCounter parses the decimal data of a counter read by get.
func parseCounter(data []byte) (uint64, bool) {
	return textclient.ParseUint(data, 1<<64-1)
}
