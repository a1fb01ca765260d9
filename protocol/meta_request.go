package protocol

// The meta commands (mg, ms, md, ma, mn, me), parsed the way memcached
// 1.6.18's proto_text.c parses them: the same checks in the same order, so
// that a bad line gets memcached's own words, and the same rule for when a
// refused ms's data block is swallowed. Where memcached returns an error
// only after acting (an over-long opaque on mg or ma), mcproxy refuses the
// line before anything is sent: same words, no side effect.

// MetaRequest is what a meta command carries beyond Request's common
// fields. The RequestReader owns it and reuses it: like every slice of a
// Request it is valid only until the reader's next call.
type MetaRequest struct {
	// KeyToken is the key as the client sent it (base64 when Base64), to
	// forward as is; Request.Keys[0] holds it decoded.
	KeyToken []byte
	// Base64 is set by the b flag.
	Base64 bool
	// Quiet is set by the q flag: memcached then leaves out the replies
	// MetaQuietHides names, never an error.
	Quiet bool
	// Value is set by the v flag (mg, ma): a hit is VA with the value.
	Value bool
	// Opaque is the O token after its letter, when Flags.Has('O').
	Opaque []byte
	// Mode is the M token's letter (ms, ma), 0 without M.
	Mode byte
	// Vivify and Recache are the N and R tokens, when present.
	Vivify, Recache int32
	// Initial is the J token (ma).
	Initial uint64
	// Flags holds every flag token in the client's order.
	Flags MetaFlags
}

// isMetaLine reports whether a partial line is a meta command (its command
// is m plus one of g, s, d, a, n, e, followed by a space), for its bound.
// Leading spaces are skipped, as memcached's tokenizer skips them.
func isMetaLine(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	b = b[i:]
	if len(b) < 3 || b[0] != 'm' || b[2] != ' ' {
		return false
	}
	switch b[1] {
	case 'g', 's', 'd', 'a', 'n', 'e':
		return true
	}
	return false
}

// parseMeta interprets mg, ms, md and ma, following memcached's
// process_m*_command and _meta_flag_preparse. n counts a terminating empty
// token, as memcached's ntokens does.
func (rr *RequestReader) parseMeta(req *Request, op Op, line []byte, toks [][]byte) error {
	n := len(toks) + 1
	if n < 3 {
		return ErrUnknownCommand
	}
	key := toks[1]
	if len(key) > MaxKeyLength {
		return ErrBadFormat
	}
	first := 2 // the first flag token
	vlen := 0
	if op == OpMetaSet {
		if n == 3 {
			return ErrBadFormat
		}
		first = 3
	}
	if n > MaxMetaTokens+1 {
		if op == OpMetaGet {
			return ErrMetaGetTooMany
		}
		return ErrMetaTooMany
	}
	if op == OpMetaSet {
		v, ok := parseInt32(toks[2])
		if !ok || v < 0 || v > 1<<31-1-2 {
			return ErrBadFormat
		}
		vlen = int(v)
	}
	m := &rr.meta
	*m = MetaRequest{KeyToken: key}
	m.Flags.reset(line)
	req.Op, req.Meta, req.Bytes = op, m, vlen
	if op == OpMetaArithmetic {
		req.Delta = 1
	}
	req.Keys = append(req.Keys, key)
	err := rr.metaFlags(req, toks[first:])
	if err != nil && (op == OpMetaDelete || op == OpMetaArithmetic) {
		err = ErrMetaInvalidFlags // md and ma do not pass the reason on
	}
	if err == nil {
		err = checkMetaCommand(req)
	}
	if err == nil && !validKey(key) {
		// memcached checks only the length; mcproxy also refuses control
		// characters, as in the text protocol.
		err = ErrBadFormat
	}
	if err == nil && op == OpMetaSet && vlen > rr.maxItemSize {
		err = ErrTooLarge
	}
	if err != nil && op == OpMetaSet {
		// memcached swallows the data block of an ms refused after its
		// length was read.
		rr.swallow = vlen + 2
	}
	return err
}

// metaFlags is _meta_flag_preparse: each token's first byte is its flag.
// A duplicate or unknown flag ends the parse at once; a bad token is noted
// and the parse goes on, so the last bad token with a reason names the
// error. A bad F token has no reason of its own: alone, it gets the
// command's default, ErrBadFormat.
func (rr *RequestReader) metaFlags(req *Request, toks [][]byte) error {
	m := req.Meta
	var seen [2]uint64
	var bad *ReplyError
	failed := false
	for _, tok := range toks {
		c := tok[0]
		if c >= 127 || seen[c>>6]&(1<<(c&63)) != 0 {
			return ErrMetaDuplicateFlag
		}
		seen[c>>6] |= 1 << (c & 63)
		arg := tok[1:]
		switch c {
		case 'b':
			m.Base64 = true
			k := decodeBase64Key(rr.keyBuf[:], m.KeyToken)
			if k == 0 {
				bad = ErrMetaBadKeyEncoding
			}
			req.Keys[0] = rr.keyBuf[:k]
		case 'N', 'T', 'R':
			v, ok := parseInt32(arg)
			if !ok {
				bad = ErrMetaBadToken
				break
			}
			switch c {
			case 'N':
				m.Vivify = v
			case 'T':
				req.Exptime = v
			default:
				m.Recache = v
			}
		case 'O':
			m.Opaque = arg
		case 'q':
			m.Quiet = true
		case 'v':
			m.Value = true
		case 'l', 'P', 'L', 'k', 's', 't', 'c', 'f', 'h', 'u', 'I':
		case 'F':
			v, ok := parseUint32(arg)
			if !ok {
				failed = true
			}
			req.Flags = v
		case 'C':
			req.Cas = metaUint64(arg, ErrMetaBadToken, &bad)
		case 'M':
			if len(tok) != 2 {
				bad = ErrMetaModeLength
			} else {
				m.Mode = tok[1]
			}
		case 'J':
			m.Initial = metaUint64(arg, ErrMetaBadInitial, &bad)
		case 'D':
			req.Delta = metaUint64(arg, ErrMetaBadDelta, &bad)
		default:
			return ErrMetaInvalidFlag
		}
		m.Flags.add(tok) // at most MaxMetaTokens-2 flags get here
	}
	switch {
	case bad != nil:
		return bad
	case failed:
		return ErrBadFormat
	}
	return nil
}

// metaUint64 parses the number a flag token carries; when there is none,
// it notes why in *bad, as metaFlags does for every bad token, and returns
// 0.
func metaUint64(arg []byte, why *ReplyError, bad **ReplyError) uint64 {
	v, ok := parseUint64(arg)
	if !ok {
		*bad = why
	}
	return v
}

// checkMetaCommand makes the checks each command does after its flags:
// the opaque's length and the mode letter, in memcached's order.
func checkMetaCommand(req *Request) error {
	m := req.Meta
	opaqueLong := false
	if tok, ok := m.Flags.Token('O'); ok && len(tok)+1 > MaxMetaOpaqueToken {
		opaqueLong = true
	}
	switch req.Op {
	case OpMetaSet:
		switch m.Mode {
		case 0, 'E', 'A', 'P', 'R', 'S':
		default:
			return ErrMetaSetMode
		}
	case OpMetaArithmetic:
		switch m.Mode {
		case 0, 'I', '+', 'D', '-':
		default:
			return ErrMetaArithMode
		}
	}
	if opaqueLong {
		return ErrMetaOpaqueTooLong
	}
	return nil
}

// parseMetaDebug interprets me, which reads only its key and a b right
// after it and ignores every other token.
func (rr *RequestReader) parseMetaDebug(req *Request, line []byte, toks [][]byte) error {
	n := len(toks) + 1
	if n < 3 || len(toks[1]) > MaxKeyLength {
		return ErrBadFormat
	}
	m := &rr.meta
	*m = MetaRequest{KeyToken: toks[1]}
	m.Flags.reset(line)
	req.Op, req.Meta = OpMetaDebug, m
	req.Keys = append(req.Keys, toks[1])
	if n >= 4 && string(toks[2]) == "b" {
		m.Base64 = true
		k := decodeBase64Key(rr.keyBuf[:], toks[1])
		if k == 0 {
			return ErrBadFormat
		}
		req.Keys[0] = rr.keyBuf[:k]
	}
	if !validKey(toks[1]) {
		return ErrBadFormat
	}
	return nil
}

// parseMetaNoop interprets mn, which ignores its tokens.
func (rr *RequestReader) parseMetaNoop(req *Request, line []byte) error {
	m := &rr.meta
	*m = MetaRequest{}
	m.Flags.reset(line)
	req.Op, req.Meta = OpMetaNoop, m
	return nil
}

// MetaQuietHides reports whether memcached leaves out a reply with code c
// to command op sent in quiet mode (q): mg hides a miss (EN); ms and md
// hide success (HD); ma hides the success of an increment (HD, and VA).
// Errors and every other code are always sent. The code alone does not
// decide an ma with N: see MetaQuietFenced.
func MetaQuietHides(op Op, c MetaCode) bool {
	switch op {
	case OpMetaGet:
		return c == MetaEN
	case OpMetaSet, OpMetaDelete:
		return c == MetaHD
	case OpMetaArithmetic:
		return c == MetaHD || c == MetaVA
	}
	return false
}

// MetaQuietFenced reports whether the quiet command req must reach the
// backend with its q, followed by mn (a fenced request, see
// MetaExpect.Fenced), instead of being sent loud and filtered by
// MetaQuietHides. That is an ma with q and N: memcached 1.6.18 to 1.6.39
// send its HD or VA when N created the item and hide it when an existing
// item was incremented (1.6.40 and later hide both), and the reply is the
// same either way, so only the backend itself can tell.
func MetaQuietFenced(req *Request) bool {
	m := req.Meta
	return req.Op == OpMetaArithmetic && m.Quiet && m.Flags.Has('N')
}
