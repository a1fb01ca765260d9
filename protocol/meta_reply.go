package protocol

import (
	"bytes"
	"fmt"
)

// MetaCode is the status of a meta reply.
type MetaCode uint8

// The meta reply codes.
const (
	MetaNone MetaCode = iota // not a meta reply (an error line)
	MetaVA                   // a value follows
	MetaHD                   // success without a value
	MetaEN                   // miss
	MetaNS                   // not stored
	MetaEX                   // exists: CAS mismatch
	MetaNF                   // not found
	MetaMN                   // the answer to mn
	MetaME                   // the answer to me
	numMetaCodes
)

var metaCodeNames = [numMetaCodes]string{
	MetaNone: "", MetaVA: "VA", MetaHD: "HD", MetaEN: "EN", MetaNS: "NS",
	MetaEX: "EX", MetaNF: "NF", MetaMN: "MN", MetaME: "ME",
}

// String returns the code as memcached writes it.
func (c MetaCode) String() string {
	if c < numMetaCodes {
		return metaCodeNames[c]
	}
	return "??"
}

func metaCodeOf(b []byte) MetaCode {
	if len(b) == 2 {
		for c := MetaVA; c < numMetaCodes; c++ {
			if string(b) == metaCodeNames[c] {
				return c
			}
		}
	}
	return MetaNone
}

// MetaReply describes a meta reply inside its Reply.Raw: the code, the
// return flags of the status line, and where VA's value or ME's fields are.
type MetaReply struct {
	Code MetaCode
	// Size is VA's data length.
	Size int
	// Flags are the return flags, in the order memcached wrote them; their
	// tokens point into Reply.Raw. ME has none: its fields are free text.
	Flags MetaFlags
	// HeaderEnd is where the status line, CRLF included, ends in Raw.
	HeaderEnd int
	// debugKey locates ME's key in Raw.
	debugKeyStart, debugKeyEnd int
}

func (m *MetaReply) reset() {
	if m.Code == MetaNone && m.Flags.n == 0 && m.Flags.line == nil {
		return // never used, or already reset: the text path pays nothing
	}
	m.Code, m.Size, m.HeaderEnd, m.debugKeyStart, m.debugKeyEnd = MetaNone, 0, 0, 0, 0
	m.Flags.reset(nil)
}

// MetaValue returns VA's data block without its CRLF, nil for any other
// reply.
func (r *Reply) MetaValue() []byte {
	if r.Meta.Code != MetaVA {
		return nil
	}
	return r.Raw[r.Meta.HeaderEnd : len(r.Raw)-2]
}

// MetaDebugKey returns ME's key as memcached wrote it (base64 when the item
// has a binary key), nil for any other reply.
func (r *Reply) MetaDebugKey() []byte {
	if r.Meta.Code != MetaME {
		return nil
	}
	return r.Raw[r.Meta.debugKeyStart:r.Meta.debugKeyEnd]
}

// readMeta reads one meta reply: an error line, or a status line exactly as
// memcached writes it ("<code>[ <size>]( <flag>)*", single spaces, the size
// only for VA) and VA's data block. With e, the status line must answer the
// request e describes (CheckMeta), checked before VA's data is read, so a
// reply to another command costs no memory. Like a VALUE, the line and
// VA's block are charged to out.Budget at once, from the header; when it
// refuses, the block is read and thrown away (out.Dropped).
func (rr *ReplyReader) readMeta(e *MetaExpect, out *Reply) error {
	line, err := rr.readLine()
	if err != nil {
		return err
	}
	body := line[:len(line)-2]
	if isErrorLine(body) {
		out.IsError = true
		out.keep(line)
		return nil
	}
	if len(line) > maxMetaReplyLine {
		return fmt.Errorf("%w: meta reply line of %d bytes", ErrBadReply, len(line))
	}
	m := &out.Meta
	var rawKey []byte
	if e != nil && e.EchoKey {
		rawKey = e.Key
	}
	if err := parseMetaHeader(body, rr.maxValue, rawKey, m); err != nil {
		return err
	}
	if e != nil {
		// m.Flags point into the read buffer, valid until the next read.
		if err := out.CheckMeta(e); err != nil {
			return err
		}
	}
	p := &rr.part
	if m.Code == MetaVA {
		p.block, p.n, p.meta = m.Size+2, m.Size, true
	}
	if !out.reserve(len(line) + p.block) {
		m.Flags.reset(nil) // the line is not kept: nothing to point into
		if p.block > 0 {
			p.skipping = true
			return rr.continueBlock(out)
		}
		return nil
	}
	out.Raw = append(out.Raw, line...)
	m.Flags.line = out.Raw[:len(body)]
	m.HeaderEnd = len(out.Raw)
	if p.block > 0 {
		return rr.continueBlock(out)
	}
	return nil
}

// continueMeta reads a meta reply (readMeta), resuming in VA's data block
// where a call cut short left it, and then, for a fenced command (e.Fenced)
// whose reply was not hidden, the MN that follows it.
func (rr *ReplyReader) continueMeta(e *MetaExpect, out *Reply) error {
	p := &rr.part
	if !p.metaDone {
		var err error
		if p.block > 0 {
			err = rr.continueBlock(out)
		} else {
			err = rr.readMeta(e, out)
		}
		if err != nil {
			return err
		}
		p.metaDone = true
	}
	if e == nil || !e.Fenced || !out.IsError && out.Meta.Code == MetaMN {
		return nil
	}
	line, err := rr.readLine()
	if err != nil {
		return err
	}
	if string(line) != "MN\r\n" {
		return fmt.Errorf("%w: %q where the MN after a quiet reply was due", ErrBadReply, clip(line[:len(line)-2]))
	}
	return nil
}

// parseMetaHeader checks a meta status line (without its CRLF) and fills m;
// m.Flags point into body until the caller moves them.
//
// rawKey, when not nil, is the decoded key a k flag asked to echo. memcached
// echoes the key of an item that mg or ma created with N (vivify) as its raw
// bytes even when the client sent it in base64, because only ms marks an
// item's key as binary; a raw key holding spaces then spreads over several
// tokens ("HD k  O1" for the key " "). With rawKey, a k flag followed by
// exactly those bytes and a space or the line's end is taken as one token,
// so such a reply is read as memcached meant it and passed on unchanged.
func parseMetaHeader(body []byte, maxValue int, rawKey []byte, m *MetaReply) error {
	if len(body) < 2 {
		return fmt.Errorf("%w: unexpected %q", ErrBadReply, clip(body))
	}
	m.Code = metaCodeOf(body[:2])
	rest := body[2:]
	if m.Code == MetaNone || len(rest) > 0 && rest[0] != ' ' {
		return fmt.Errorf("%w: unexpected %q", ErrBadReply, clip(body))
	}
	m.Flags.reset(body)
	switch m.Code {
	case MetaMN:
		if len(rest) > 0 {
			return fmt.Errorf("%w: MN with %q", ErrBadReply, clip(rest))
		}
		return nil
	case MetaME:
		// "ME <key> <field>=<value> ..."
		rest = rest[min(1, len(rest)):]
		i := bytes.IndexByte(rest, ' ')
		if i < 0 || !validKey(rest[:i]) || i+1 == len(rest) {
			return fmt.Errorf("%w: bad ME line %q", ErrBadReply, clip(body))
		}
		m.debugKeyStart = len(body) - len(rest)
		m.debugKeyEnd = m.debugKeyStart + i
		return nil
	case MetaVA:
		if len(rest) == 0 {
			return fmt.Errorf("%w: VA without a size", ErrBadReply)
		}
		rest = rest[1:]
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			i = len(rest)
		}
		size, ok := parseDecimal(rest[:i])
		if !ok || size > uint64(maxValue) {
			return fmt.Errorf("%w: bad VA size in %q", ErrBadReply, clip(body))
		}
		m.Size = int(size)
		rest = rest[i:]
	}
	for len(rest) > 0 {
		// rest is " <flag>..."
		rest = rest[1:]
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			i = len(rest)
		}
		if n := 1 + len(rawKey); i < n && len(rest) >= n && rest[0] == 'k' && !m.Flags.Has('k') &&
			bytes.Equal(rest[1:n], rawKey) && (len(rest) == n || rest[n] == ' ') {
			i = n // a raw key with spaces in it
		}
		tok := rest[:i]
		rest = rest[i:]
		if len(tok) == 0 {
			return fmt.Errorf("%w: empty flag in %q", ErrBadReply, clip(body))
		}
		if _, ok := letterBit(tok[0]); !ok || m.Flags.Has(tok[0]) {
			return fmt.Errorf("%w: bad or repeated flag %q", ErrBadReply, clip(tok))
		}
		if !m.Flags.add(tok) {
			return fmt.Errorf("%w: more than %d flags", ErrBadReply, MaxMetaFlags)
		}
	}
	return nil
}

// MetaExpect is what a meta request asked for, to check that a reply
// answers it. Its slices are the caller's: built from a Request they alias
// the reader's buffer and must be copied to outlive the next Next.
type MetaExpect struct {
	Op Op
	// Value is set when v was sent (mg, ma): a hit is then VA, else HD.
	Value bool
	// HasOpaque and Opaque: the O token sent, which the reply must echo.
	HasOpaque bool
	Opaque    []byte
	// EchoKey and Key: k was sent, and the key (decoded) it must echo.
	EchoKey bool
	Key     []byte
	// Fenced is set when the command went with its q and an mn after it
	// (MetaQuietFenced): the backend answers as memcached does in quiet
	// mode, so the answer is the reply memcached shows and then MN, or MN
	// alone when memcached hid the reply. The MN after a reply is read
	// with it and not kept in Reply.Raw; an MN alone is the reply, its
	// code MetaMN.
	Fenced bool
}

// ExpectMeta returns what req asks for; the slices alias req.
func ExpectMeta(req *Request) MetaExpect {
	m := req.Meta
	e := MetaExpect{Op: req.Op, Value: m.Value}
	e.Opaque, e.HasOpaque = m.Flags.Token('O')
	if m.Flags.Has('k') {
		e.EchoKey, e.Key = true, req.Key()
	}
	return e
}

// metaAllowed lists the codes each meta command may get; VA and HD of mg
// and ma are checked against Value separately.
var metaAllowed = [NumOps][numMetaCodes]bool{
	OpMetaGet:        {MetaVA: true, MetaHD: true, MetaEN: true},
	OpMetaSet:        {MetaHD: true, MetaNS: true, MetaEX: true, MetaNF: true},
	OpMetaDelete:     {MetaHD: true, MetaNF: true, MetaEX: true},
	OpMetaArithmetic: {MetaVA: true, MetaHD: true, MetaNF: true, MetaNS: true, MetaEX: true},
	OpMetaNoop:       {MetaMN: true},
	OpMetaDebug:      {MetaME: true, MetaEN: true},
}

// CheckMeta reports whether r can be memcached's answer to the request e
// describes: a code that command gets (VA exactly when a value was asked
// for), the opaque echoed exactly, and the key echoed when asked (decoded
// first when the reply marks it base64). An error line answers anything.
// A reply that fails is a backend out of step: close its connection.
// Errors quote copies (string(...)): e's slices, which may point into the
// caller's stack, must not escape.
func (r *Reply) CheckMeta(e *MetaExpect) error {
	if r.IsError {
		return nil
	}
	c := r.Meta.Code
	if c == MetaMN && e.Fenced {
		return nil // memcached hid the reply
	}
	valued := e.Op == OpMetaGet || e.Op == OpMetaArithmetic
	if e.Op >= NumOps || !metaAllowed[e.Op][c] || valued && (c == MetaVA || c == MetaHD) && (c == MetaVA) != e.Value {
		return fmt.Errorf("%w: %s in answer to %v", ErrBadReply, c, e.Op)
	}
	if c == MetaMN || c == MetaME {
		return nil
	}
	f := &r.Meta.Flags
	op, ok := f.Token('O')
	if ok != e.HasOpaque || !bytes.Equal(op, e.Opaque) {
		return fmt.Errorf("%w: opaque %q in answer to opaque %q", ErrBadReply, string(clip(op)), string(clip(e.Opaque)))
	}
	k, ok := f.Token('k')
	if ok != e.EchoKey {
		return fmt.Errorf("%w: key echo %q in answer to k=%v", ErrBadReply, string(clip(k)), e.EchoKey)
	}
	if ok {
		// The key decoded into buf, which must not escape: errors quote k.
		var buf [MaxKeyLength]byte
		key := k
		if f.Has('b') {
			if len(k) > MaxKeyLength {
				return fmt.Errorf("%w: key echo of %d bytes", ErrBadReply, len(k))
			}
			key = buf[:decodeBase64Key(buf[:], k)]
		}
		if !bytes.Equal(key, e.Key) {
			return fmt.Errorf("%w: key echo %q in answer to key %q", ErrBadReply, string(clip(k)), string(clip(e.Key)))
		}
	}
	return nil
}

// expectOfLine is ExpectMeta for a meta command line as AppendMetaCommand
// writes it ("<cmd> <key>[ <len>]( <flag>)*\r\n", single spaces, then ms's
// data block, or the mn of a fenced command), which is all a backend
// connection keeps of a request. The key, when k was sent with b, is
// decoded into keyBuf; the other slices alias cmd.
func expectOfLine(op Op, cmd []byte, keyBuf []byte) MetaExpect {
	e := MetaExpect{Op: op}
	if op == OpMetaNoop || op == OpMetaDebug {
		return e
	}
	// The line ends at its first LF; a token may hold a CR of its own.
	if i := bytes.IndexByte(cmd, '\n'); i >= 0 {
		e.Fenced = op != OpMetaSet && string(cmd[i+1:]) == "mn\r\n"
		cmd = cmd[:i]
	}
	cmd = bytes.TrimSuffix(cmd, []byte("\r"))
	var key []byte
	base64 := false
	for n := 0; len(cmd) > 0; n++ {
		i := bytes.IndexByte(cmd, ' ')
		if i < 0 {
			i = len(cmd)
		}
		tok := cmd[:i]
		cmd = cmd[min(i+1, len(cmd)):]
		switch {
		case n == 0: // the command
		case n == 1:
			key = tok
		case n == 2 && op == OpMetaSet: // the data length
		case len(tok) == 0:
		default:
			switch tok[0] {
			case 'v':
				e.Value = true
			case 'O':
				e.HasOpaque, e.Opaque = true, tok[1:]
			case 'k':
				e.EchoKey = true
			case 'b':
				base64 = true
			}
		}
	}
	if e.EchoKey {
		e.Key = key
		if base64 {
			e.Key = keyBuf[:decodeBase64Key(keyBuf, key)]
		}
	}
	return e
}
