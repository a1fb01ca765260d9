package protocol

import "strconv"

// Meta encoders. A meta command is forwarded as the command, the key as the
// client sent it (so memcached decodes a base64 key itself, exactly as it
// would have), ms's data length as a plain number, and every flag token the
// parser accepted, in the client's order and single-spaced. memcached reads
// each of those tokens as the parser did, so the backend cannot read the
// line differently; what the proxy changes is said in MetaRewrite.

// MetaRewrite says how the proxy changes a meta command it forwards.
type MetaRewrite struct {
	// Loud drops the q flag: the backend then answers everything, which
	// keeps the connection's replies one per request, and the proxy drops
	// what memcached would have hidden (MetaQuietHides). A quiet command
	// sent with its q must be followed by mn (MetaQuietFenced).
	Loud bool
	// SetOpaque sends O<Opaque> in place of the client's O token (where it
	// stood) or, without one, at the end. Opaque must be a valid token of
	// at most MaxMetaOpaqueToken-1 bytes.
	SetOpaque bool
	Opaque    []byte
	// SetTTL sends T<TTL> in place of the client's T token or, without
	// one, at the end; SetVivify sends N<Vivify> in place of the client's
	// N token (only when there is one). The proxy caps expiries this way
	// on a stand-in backend.
	SetTTL    bool
	TTL       int32
	SetVivify bool
	Vivify    int32
}

// MetaTokens counts the tokens of the line AppendMetaCommand writes for
// req (not mn or me) with rw: the command, the key, ms's data length and
// the flags, less a q that rw drops, plus an O or a T that rw adds.
// memcached refuses a line of more than MaxMetaTokens, so a rewrite that
// would pass it must not be sent.
func MetaTokens(req *Request, rw MetaRewrite) int {
	m := req.Meta
	n := 2 + m.Flags.Len()
	if req.Op == OpMetaSet {
		n++
	}
	if rw.Loud && m.Quiet {
		n--
	}
	if rw.SetOpaque && !m.Flags.Has('O') {
		n++
	}
	if rw.SetTTL && !m.Flags.Has('T') {
		n++
	}
	return n
}

// AppendMetaCommand appends the line of the meta command req, changed as rw
// says. ms's data block follows it.
func AppendMetaCommand(dst []byte, req *Request, rw MetaRewrite) []byte {
	m := req.Meta
	dst = append(dst, req.Op.String()...)
	switch req.Op {
	case OpMetaNoop:
		return append(dst, crlf...)
	case OpMetaDebug:
		dst = append(append(dst, ' '), m.KeyToken...)
		if m.Base64 {
			dst = append(dst, " b"...)
		}
		return append(dst, crlf...)
	}
	dst = append(append(dst, ' '), m.KeyToken...)
	if req.Op == OpMetaSet {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(req.Bytes), 10)
	}
	opaqueDone, ttlDone := false, false
	for i := 0; i < m.Flags.Len(); i++ {
		c, tok := m.Flags.At(i)
		switch {
		case c == 'q' && rw.Loud:
			continue
		case c == 'O' && rw.SetOpaque:
			tok = rw.Opaque
			opaqueDone = true
		case c == 'T' && rw.SetTTL:
			dst = AppendInt32(append(dst, " T"...), rw.TTL)
			ttlDone = true
			continue
		case c == 'N' && rw.SetVivify:
			dst = AppendInt32(append(dst, " N"...), rw.Vivify)
			continue
		}
		dst = append(append(dst, ' ', c), tok...)
	}
	if rw.SetOpaque && !opaqueDone {
		dst = append(append(dst, " O"...), rw.Opaque...)
	}
	if rw.SetTTL && !ttlDone {
		dst = AppendInt32(append(dst, " T"...), rw.TTL)
	}
	return append(dst, crlf...)
}

// AppendMetaNoop appends "mn\r\n".
func AppendMetaNoop(dst []byte) []byte { return append(dst, "mn\r\n"...) }

// AppendMetaReply appends the backend's meta reply r as the client must
// see it: r's exact bytes, except that its O flag becomes the client's
// opaque (hasOpaque) or goes (the client sent none, the proxy added it).
func AppendMetaReply(dst []byte, r *Reply, hasOpaque bool, opaque []byte) []byte {
	dst = AppendMetaReplyHeader(dst, r, hasOpaque, opaque)
	return append(dst, r.MetaBlock()...)
}

// MetaBlock returns what follows a meta reply's status line in r.Raw: VA's
// data block with its CRLF, empty for any other reply (an error line
// included, which AppendMetaReplyHeader writes whole).
func (r *Reply) MetaBlock() []byte {
	if r.IsError || r.Meta.Code != MetaVA {
		return nil
	}
	return r.Raw[r.Meta.HeaderEnd:]
}

// AppendMetaReplyHeader is AppendMetaReply without VA's data block: the
// status line (or the whole error line, MN or ME) as the client must see
// it. A caller writes r.MetaBlock() after it, so a large value need not be
// copied into dst.
func AppendMetaReplyHeader(dst []byte, r *Reply, hasOpaque bool, opaque []byte) []byte {
	f := &r.Meta.Flags
	if r.IsError || r.Meta.Code == MetaMN || r.Meta.Code == MetaME {
		return append(dst, r.Raw...)
	}
	if tok, ok := f.Token('O'); ok == hasOpaque && string(tok) == string(opaque) {
		return append(dst, r.Raw[:r.Meta.HeaderEnd]...) // nothing to change
	}
	dst = append(dst, r.Meta.Code.String()...)
	if r.Meta.Code == MetaVA {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(r.Meta.Size), 10)
	}
	done := false
	for i := 0; i < f.Len(); i++ {
		c, tok := f.At(i)
		if c == 'O' {
			if !hasOpaque {
				continue
			}
			tok, done = opaque, true
		}
		dst = append(append(dst, ' ', c), tok...)
	}
	if hasOpaque && !done {
		dst = append(append(dst, " O"...), opaque...)
	}
	return append(dst, crlf...)
}

// AppendMetaMiss appends memcached's answer to req (mg) for a missing item,
// "EN" with the O and k flags echoed in the client's order (a base64 key
// is echoed re-encoded, with b), which is what the proxy answers when the
// key's backend has failed: a miss is safe.
func AppendMetaMiss(dst []byte, req *Request) []byte {
	dst = append(dst, "EN"...)
	m := req.Meta
	for i := 0; i < m.Flags.Len(); i++ {
		switch c, tok := m.Flags.At(i); c {
		case 'O':
			dst = append(append(dst, " O"...), tok...)
		case 'k':
			dst = append(dst, " k"...)
			if m.Base64 {
				dst = append(appendBase64Key(dst, req.Key()), " b"...)
			} else {
				dst = append(dst, req.Key()...)
			}
		}
	}
	return append(dst, crlf...)
}

// AppendDeleteOf appends a command that deletes key, whatever its bytes,
// and returns the command's Op, which its reply answers: "delete <key>"
// when key can be written in the text protocol, else "md <key in base64>
// b" (a key a meta client sent in base64 may hold spaces or control
// bytes). A decoded key is at most 186 bytes, so its base64 form is within
// MaxKeyLength.
func AppendDeleteOf(dst, key []byte) (Op, []byte) {
	if validKey(key) {
		return OpDelete, AppendDelete(dst, key)
	}
	dst = append(dst, "md "...)
	dst = appendBase64Key(dst, key)
	return OpMetaDelete, append(dst, " b\r\n"...)
}

// AppendMetaKey appends key as the key token of a meta command: as it is
// when a text command could carry it, else in base64. It reports whether
// it used base64, in which case the command must carry the b flag.
func AppendMetaKey(dst, key []byte) ([]byte, bool) {
	if validKey(key) {
		return append(dst, key...), false
	}
	return appendBase64Key(dst, key), true
}
