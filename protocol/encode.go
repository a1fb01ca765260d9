package protocol

import "strconv"

// The encoders write the canonical command lines mcproxy sends to backends.
// The proxy never forwards a client's line as it came: it re-encodes what it
// parsed, so a backend can never read a command differently from the proxy
// (and so lose track of where the next command starts). noreply is never
// sent: the proxy always reads the backend's reply, which keeps the
// connection in step, and drops it when the client asked for no reply.

var crlf = []byte("\r\n")

// AppendRetrieval appends "get|gets|gat|gats [<exptime>] <key>...\r\n".
func AppendRetrieval(dst []byte, op Op, exptime int32, keys [][]byte) []byte {
	dst = append(dst, op.String()...)
	if op == OpGat || op == OpGats {
		dst = append(dst, ' ')
		dst = AppendInt32(dst, exptime)
	}
	for _, k := range keys {
		dst = append(dst, ' ')
		dst = append(dst, k...)
	}
	return append(dst, crlf...)
}

// AppendStorageLine appends the command line of a storage command,
// "<op> <key> <flags> <exptime> <bytes> [<cas>]\r\n"; the data block follows
// it.
func AppendStorageLine(dst []byte, req *Request) []byte {
	dst = append(dst, req.Op.String()...)
	dst = append(dst, ' ')
	dst = append(dst, req.Key()...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(req.Flags), 10)
	dst = append(dst, ' ')
	dst = AppendInt32(dst, req.Exptime)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(req.Bytes), 10)
	if req.Op == OpCas {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, req.Cas, 10)
	}
	return append(dst, crlf...)
}

// AppendKeyCommand appends the line of incr, decr, touch or delete.
func AppendKeyCommand(dst []byte, req *Request) []byte {
	dst = append(dst, req.Op.String()...)
	dst = append(dst, ' ')
	dst = append(dst, req.Key()...)
	switch req.Op {
	case OpIncr, OpDecr:
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, req.Delta, 10)
	case OpTouch:
		dst = append(dst, ' ')
		dst = AppendInt32(dst, req.Exptime)
	}
	return append(dst, crlf...)
}

// AppendDelete appends "delete <key>\r\n".
func AppendDelete(dst []byte, key []byte) []byte {
	dst = append(dst, "delete "...)
	dst = append(dst, key...)
	return append(dst, crlf...)
}

// AppendFlushAll appends "flush_all [<delay>]\r\n".
func AppendFlushAll(dst []byte, req *Request) []byte {
	dst = append(dst, "flush_all"...)
	if req.HasDelay {
		dst = append(dst, ' ')
		dst = AppendInt32(dst, req.Delay)
	}
	return append(dst, crlf...)
}

// AppendInt32 appends an exptime or delay as the shortest decimal that
// memcached reads back as v. memcached parses these fields with a 64-bit
// strtol and keeps the low 32 bits, so 2^32+v means v; for v below
// -999999999 that form has 10 digits where "-|v|" has 11. Writing the
// shorter one keeps every canonical line at most as long as the client line
// it came from, so re-encoding can never push a line over a limit that the
// client's line was within.
func AppendInt32(dst []byte, v int32) []byte {
	if v < -999999999 {
		return strconv.AppendUint(dst, uint64(uint32(v)), 10)
	}
	return strconv.AppendInt(dst, int64(v), 10)
}
