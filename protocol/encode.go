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
		dst = strconv.AppendInt(dst, int64(exptime), 10)
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
	dst = strconv.AppendInt(dst, int64(req.Exptime), 10)
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
		dst = strconv.AppendInt(dst, int64(req.Exptime), 10)
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
		dst = strconv.AppendInt(dst, int64(req.Delay), 10)
	}
	return append(dst, crlf...)
}
