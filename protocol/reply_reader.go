package protocol

import (
	"bytes"
	"fmt"
	"io"
	"math"
)

// ReplyKind says what shape of reply a command gets, which is what a reply
// parser needs to know where the reply ends.
type ReplyKind uint8

const (
	// ReplyLine is one line: STORED, DELETED, a number, OK, VERSION ...
	ReplyLine ReplyKind = iota
	// ReplyRetrieval is zero or more VALUE blocks and END.
	ReplyRetrieval
	// ReplyStats is zero or more STAT lines and END.
	ReplyStats
	// ReplyMeta is one meta reply: a status line (VA, HD, EN, NS, EX, NF,
	// MN, ME) with return flags, and VA's data block.
	ReplyMeta
)

// KindOf returns the reply shape of op.
func KindOf(op Op) ReplyKind {
	switch {
	case op.IsRetrieval():
		return ReplyRetrieval
	case op == OpStats:
		return ReplyStats
	case op.IsMeta():
		return ReplyMeta
	}
	return ReplyLine
}

// maxReplyLine bounds one reply line from a backend (a VALUE header is at
// most about 320 bytes; STAT lines are short).
const maxReplyLine = 64 << 10

// Value locates one VALUE block inside Reply.Raw.
type Value struct {
	KeyStart, KeyEnd int // the key
	Start, End       int // "VALUE ...\r\n<data>\r\n"
}

// Reply is one backend reply, kept as the exact bytes the backend sent.
type Reply struct {
	Raw []byte
	// Values locates each VALUE block of a retrieval reply, in order.
	Values []Value
	// IsError is set when the reply is ERROR, CLIENT_ERROR or SERVER_ERROR.
	IsError bool
	// Meta describes a meta reply (kind ReplyMeta) that is not an error.
	Meta MetaReply

	// Budget, when set, is charged with the memory the reader takes for
	// Raw before it takes it. When it refuses, the reader keeps parsing the
	// reply to stay in step with the connection but retains no more of it,
	// and sets Dropped. Reset keeps Budget.
	Budget Budget
	// Dropped is set when Budget refused: Raw and Values are incomplete and
	// must not be used.
	Dropped bool
	// charged is the capacity of Raw that Budget has been charged for:
	// Raw's whole capacity once the reader has grown it, 0 while Raw is
	// the buffer the reply came with.
	charged int
}

// Budget accounts for reply memory as a reader retains it. Charge is called
// on the reader's goroutine and must not block: a reader shared by many
// clients must never wait for one of them.
type Budget interface {
	// Charge asks for n more bytes; false refuses them, and the rest of the
	// reply is discarded as it arrives.
	Charge(n int) bool
}

// Key returns the key of the i-th value.
func (r *Reply) Key(i int) []byte { v := r.Values[i]; return r.Raw[v.KeyStart:v.KeyEnd] }

// Block returns the whole i-th VALUE block, header and data.
func (r *Reply) Block(i int) []byte { v := r.Values[i]; return r.Raw[v.Start:v.End] }

// Reset empties r, keeping its memory.
func (r *Reply) Reset() {
	r.Raw, r.Values, r.IsError, r.Dropped, r.charged = r.Raw[:0], r.Values[:0], false, false, 0
	r.Meta.reset()
}

// keep appends b to out.Raw, charging out.Budget for any memory the append
// needs. Once the budget has refused, nothing more is kept.
func (out *Reply) keep(b []byte) {
	if out.reserve(len(b)) {
		out.Raw = append(out.Raw, b...)
	}
}

// replyGrowthDivisor sets how a Reply's buffer grows: by what it needs,
// or by 1/replyGrowthDivisor of what it holds when that is more. An eighth
// keeps copying linear (each byte is copied at most about nine times as a
// reply of many small values grows) while the spare capacity, which is
// memory held and charged like the rest, stays within an eighth of the
// reply. Doubling would copy less but could charge a reply of large
// values nearly twice its size.
const replyGrowthDivisor = 8

// MaxReplyCapacity is the most memory a Reply with a Budget takes, and
// charges, to hold n bytes. A caller that bounds reply memory by counting
// values (the proxy's output window) counts each value at this size.
func MaxReplyCapacity(n int) int { return n + (n+replyGrowthDivisor-1)/replyGrowthDivisor }

// reserve makes room for n more bytes in out.Raw, charging out.Budget for
// the memory that takes, and reports whether the room is there. The first
// growth charges the whole new buffer (the one the reply came with, say
// from a pool, is no longer used); later ones charge what they add. The
// buffer grows as replyGrowthDivisor says, so a reply is never charged more
// than MaxReplyCapacity of what it holds. Without a budget it only reports
// whether the reply is still kept; append grows Raw as before.
func (out *Reply) reserve(n int) bool {
	if out.Dropped {
		return false
	}
	if out.Budget == nil || cap(out.Raw)-len(out.Raw) >= n {
		return true
	}
	have := len(out.Raw)
	newCap := have + max(n, have/replyGrowthDivisor)
	if !out.Budget.Charge(newCap - out.charged) {
		out.Dropped = true
		return false
	}
	out.charged = newCap
	nb := make([]byte, have, newCap)
	copy(nb, out.Raw)
	out.Raw = nb
	return true
}

// ReplyReader parses replies from a backend connection.
//
// It reads from a blocking stream or from a non-blocking one: when the
// stream's Read returns ErrWouldBlock, ReadReply and ReadReplyTo return it
// with the reply partly read into out and the reader's place in it kept, and
// the caller calls again with the same out once more bytes have arrived.
type ReplyReader struct {
	rd       io.Reader
	buf      []byte
	r, w     int
	maxValue int
	part     replyPart // where a reply cut short by ErrWouldBlock stands
}

// replyPart is the state of a reply being read across calls.
type replyPart struct {
	active bool // a reply is under way: out holds its beginning
	first  bool // no line of it has been read yet
	ask    asked
	hasAsk bool
	// block counts the bytes of a data block (its CRLF included) still to
	// come; 0 between lines. n is the block's announced length, for errors.
	block, n int
	skipping bool    // the block is thrown away (the budget refused it)
	tail     [2]byte // the last two bytes of a skipped block so far
	value    Value   // the VALUE whose block is being read
	meta     bool    // the block is a meta VA's: the reply ends with it
	metaDone bool    // the meta reply is read; a fenced one's MN is due
}

// NewReplyReader returns a reader of backend replies from rd that accepts
// values up to maxValue bytes (1 GiB, memcached's ceiling, when <= 0).
func NewReplyReader(rd io.Reader, maxValue int) *ReplyReader {
	if maxValue <= 0 {
		maxValue = 1 << 30
	}
	return &ReplyReader{rd: rd, buf: make([]byte, initialBufferSize), maxValue: maxValue}
}

// Buffered returns how many received bytes are not parsed yet.
func (rr *ReplyReader) Buffered() int { return rr.w - rr.r }

// Pending returns the received bytes not parsed yet, for an error message;
// they are valid until the next call.
func (rr *ReplyReader) Pending() []byte { return rr.buf[rr.r:rr.w] }

// InReply reports whether a reply is partly read: a call cut short by
// ErrWouldBlock left it to be finished by the next one.
func (rr *ReplyReader) InReply() bool { return rr.part.active }

// Fill reads at least one more byte into the buffer (it blocks on a
// blocking stream); a reader uses it to notice a closed connection, or
// bytes nobody asked for, while no reply is expected.
func (rr *ReplyReader) Fill() error {
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
	}
	if rr.w == len(rr.buf) {
		return nil // already full: there are bytes to look at
	}
	return rr.fill()
}

// ReadReply reads one whole reply of the given kind into out, replacing its
// contents. Any error but ErrWouldBlock leaves the connection out of step:
// close it.
//
// The reader accepts only what memcached sends, so that it can never take a
// reply to end anywhere but where memcached ends it: every line ends in
// CRLF; a one-line reply is one of memcached's single-line answers; a
// retrieval reply is VALUE blocks then END; a stats reply is STAT lines then
// END; and an error line (ERROR, CLIENT_ERROR, SERVER_ERROR) is a whole
// reply of any kind on its own. Anything else is ErrBadReply.
//
// With out.Budget set, memory for the reply is charged before it is taken;
// a refusal turns the rest of the reply into bytes that are parsed and
// thrown away (see Reply.Dropped).
func (rr *ReplyReader) ReadReply(kind ReplyKind, out *Reply) error {
	return rr.readReply(kind, nil, nil, out)
}

// readReply is ReadReply that, when ask is not nil, also checks each VALUE
// against the keys asked for, and when e is not nil, checks a meta reply
// against its request (see ReadReplyTo). ask is taken only when a reply
// starts; a resumed call goes on with the one it started with. e is used
// when the status line is read, by whichever call reads it.
func (rr *ReplyReader) readReply(kind ReplyKind, ask *asked, e *MetaExpect, out *Reply) error {
	p := &rr.part
	if !p.active {
		out.Reset()
		*p = replyPart{active: true, first: true}
		if ask != nil {
			p.ask, p.hasAsk = *ask, true
		}
	}
	err := rr.continueReply(kind, e, out)
	if err != ErrWouldBlock {
		*p = replyPart{}
	}
	return err
}

func (rr *ReplyReader) continueReply(kind ReplyKind, e *MetaExpect, out *Reply) error {
	if kind == ReplyMeta {
		return rr.continueMeta(e, out)
	}
	p := &rr.part
	if p.block > 0 {
		if err := rr.continueBlock(out); err != nil {
			return err
		}
	}
	var ask *asked
	if p.hasAsk {
		ask = &p.ask
	}
	for {
		line, err := rr.readLine()
		if err != nil {
			return err
		}
		first := p.first
		p.first = false
		body := line[:len(line)-2]
		switch {
		case kind == ReplyRetrieval && bytes.HasPrefix(body, []byte("VALUE ")):
			if err := rr.readValue(body, line, ask, out); err != nil {
				return err
			}
		case kind == ReplyStats && bytes.HasPrefix(body, []byte("STAT ")):
			out.keep(line)
		case kind != ReplyLine && string(body) == "END":
			out.keep(line)
			return nil
		case first && isErrorLine(body):
			out.IsError = true
			out.keep(line)
			return nil
		case kind == ReplyLine && isLineReply(body):
			out.keep(line)
			return nil
		default:
			return fmt.Errorf("%w: unexpected %q", ErrBadReply, clip(body))
		}
	}
}

// valueChunk bounds how much memory a value takes before its bytes arrive,
// so a header that announces a huge value costs memory only as the value
// is actually received.
const valueChunk = 256 << 10

// readValue appends one "VALUE <key> <flags> <bytes> [<cas>]" header and
// its data block to out. With ask, a value that does not answer the command
// is refused on its header, before its data is read.
func (rr *ReplyReader) readValue(body, line []byte, ask *asked, out *Reply) error {
	keyLen, n, hasCas, ok := parseValueHeader(body, rr.maxValue)
	if !ok {
		return fmt.Errorf("%w: bad VALUE line %q", ErrBadReply, clip(body))
	}
	if ask != nil {
		if err := ask.take(body[len("VALUE "):len("VALUE ")+keyLen], hasCas); err != nil {
			return err
		}
	}
	start := len(out.Raw)
	keyStart := start + len("VALUE ")
	p := &rr.part
	p.block, p.n, p.meta = n+2, n, false // the data block and its CRLF
	p.value = Value{KeyStart: keyStart, KeyEnd: keyStart + keyLen, Start: start}
	// With a budget the whole block (and room for the END after it) is
	// charged and allocated at once: the charge, not the arrival of the
	// bytes, bounds what a header announcing a huge value can cost.
	if out.Budget != nil && !out.reserve(len(line)+p.block+len("END\r\n")) {
		p.skipping = true
	} else if out.keep(line); out.Dropped {
		p.skipping = true
	}
	return rr.continueBlock(out)
}

// continueBlock reads what it can of the data block under way: into out.Raw
// (first what is buffered, then straight from the stream), or, when
// skipping, through the read buffer and away. When the block is complete it
// checks the CRLF that ends it and, for a VALUE, records the value.
func (rr *ReplyReader) continueBlock(out *Reply) error {
	p := &rr.part
	if p.skipping {
		return rr.continueSkip()
	}
	got := min(p.block, rr.w-rr.r)
	out.Raw = append(out.Raw, rr.buf[rr.r:rr.r+got]...)
	rr.r += got
	p.block -= got
	for p.block > 0 {
		step := p.block
		if out.Budget == nil {
			step = min(step, valueChunk)
		}
		have := len(out.Raw)
		out.Raw = grow(out.Raw, step)
		k, err := rr.rd.Read(out.Raw[have:])
		out.Raw = out.Raw[:have+k]
		p.block -= k
		if p.block > 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if out.Raw[len(out.Raw)-2] != '\r' || out.Raw[len(out.Raw)-1] != '\n' {
		return fmt.Errorf("%w: value of %d bytes not followed by CRLF", ErrBadReply, p.n)
	}
	if !p.meta {
		p.value.End = len(out.Raw)
		out.Values = append(out.Values, p.value)
	}
	return nil
}

// continueSkip reads the rest of a data block through the read buffer and
// throws it away, checking only the CRLF at its end: the reply is being
// dropped, but the connection must stay in step.
func (rr *ReplyReader) continueSkip() error {
	p := &rr.part
	for p.block > 0 {
		if rr.r == rr.w {
			rr.r, rr.w = 0, 0
			if err := rr.fill(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		got := min(p.block, rr.w-rr.r)
		chunk := rr.buf[rr.r : rr.r+got]
		if got >= 2 {
			p.tail[0], p.tail[1] = chunk[got-2], chunk[got-1]
		} else {
			p.tail[0], p.tail[1] = p.tail[1], chunk[0]
		}
		rr.r += got
		p.block -= got
	}
	if p.tail != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: value of %d bytes not followed by CRLF", ErrBadReply, p.n)
	}
	return nil
}

// parseValueHeader checks a VALUE line (without its CRLF) exactly as
// memcached writes it, "VALUE <key> <flags> <bytes>[ <cas>]" with single
// spaces and plain decimal numbers, and returns the key's length and the
// data length. A number with a sign, a stray byte or a value over maxValue
// is refused: the data length decides where the reply ends, so it must mean
// exactly what memcached meant. hasCas tells whether the cas field is there.
func parseValueHeader(body []byte, maxValue int) (keyLen, n int, hasCas, ok bool) {
	rest := body[len("VALUE "):]
	var f [4][]byte // key, flags, bytes, cas
	nf := 0
	for {
		i := bytes.IndexByte(rest, ' ')
		if nf == len(f) {
			return 0, 0, false, false // a fifth field
		}
		if i < 0 {
			f[nf] = rest
			nf++
			break
		}
		f[nf], rest = rest[:i], rest[i+1:]
		nf++
	}
	if nf < 3 || !validKey(f[0]) {
		return 0, 0, false, false
	}
	if _, ok := parseDecimal(f[1]); !ok { // flags
		return 0, 0, false, false
	}
	if nf == 4 {
		if _, ok := parseDecimal(f[3]); !ok { // cas unique
			return 0, 0, false, false
		}
	}
	v, ok := parseDecimal(f[2])
	if !ok || v > uint64(maxValue) {
		return 0, 0, false, false
	}
	return len(f[0]), int(v), nf == 4, true
}

// parseDecimal reads a non-empty run of decimal digits that fits in 64
// bits, nothing else.
func parseDecimal(s []byte) (uint64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// readLine returns the next line including its CRLF. A line that ends in
// a bare LF is not memcached's and is refused.
func (rr *ReplyReader) readLine() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(rr.buf[rr.r+scanned:rr.w], '\n'); i >= 0 {
			end := rr.r + scanned + i + 1
			line := rr.buf[rr.r:end]
			if len(line) < 2 || line[len(line)-2] != '\r' {
				return nil, fmt.Errorf("%w: line %q not ended by CRLF", ErrBadReply, clip(line))
			}
			rr.r = end
			return line, nil
		}
		scanned = rr.w - rr.r
		if scanned >= maxReplyLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrBadReply, maxReplyLine)
		}
		if rr.w == len(rr.buf) {
			if rr.r > 0 {
				rr.w = copy(rr.buf, rr.buf[rr.r:rr.w])
				rr.r = 0
			} else {
				nb := make([]byte, min(2*len(rr.buf), maxReplyLine))
				rr.w = copy(nb, rr.buf[:rr.w])
				rr.buf = nb
			}
		}
		if err := rr.fill(); err != nil {
			return nil, err
		}
	}
}

func (rr *ReplyReader) fill() error {
	n, err := rr.rd.Read(rr.buf[rr.w:])
	rr.w += n
	if n == 0 && err != nil {
		return err
	}
	return nil
}

// grow extends b by n bytes, reallocating at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*len(b)+n)
	copy(nb, b)
	return nb
}

// isErrorLine reports whether a line is one of memcached's error replies:
// "ERROR", "ERROR <msg>" (too many connections), "CLIENT_ERROR <msg>" or
// "SERVER_ERROR <msg>".
func isErrorLine(b []byte) bool {
	return string(b) == "ERROR" || bytes.HasPrefix(b, []byte("ERROR ")) ||
		bytes.HasPrefix(b, []byte("CLIENT_ERROR ")) || bytes.HasPrefix(b, []byte("SERVER_ERROR "))
}

// isLineReply reports whether a line is one of the one-line replies that
// memcached gives to the commands of kind ReplyLine (errors aside): a
// storage, delete, touch or flush_all status, the value of incr/decr, or
// the answer to version. A line that opens or closes a multi-line reply
// (VALUE, STAT, END) is not one: seeing it here means the connection is out
// of step.
func isLineReply(b []byte) bool {
	switch string(b) {
	case "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "OK":
		return true
	}
	if bytes.HasPrefix(b, []byte("VERSION ")) {
		return true
	}
	_, ok := parseDecimal(b) // incr/decr
	return ok
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
