package protocol

import (
	"bytes"
	"fmt"
	"io"
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
)

// KindOf returns the reply shape of op.
func KindOf(op Op) ReplyKind {
	switch {
	case op.IsRetrieval():
		return ReplyRetrieval
	case op == OpStats:
		return ReplyStats
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
}

// Key returns the key of the i-th value.
func (r *Reply) Key(i int) []byte { v := r.Values[i]; return r.Raw[v.KeyStart:v.KeyEnd] }

// Block returns the whole i-th VALUE block, header and data.
func (r *Reply) Block(i int) []byte { v := r.Values[i]; return r.Raw[v.Start:v.End] }

// Reset empties r, keeping its memory.
func (r *Reply) Reset() {
	r.Raw, r.Values, r.IsError = r.Raw[:0], r.Values[:0], false
}

// ReplyReader parses replies from a backend connection.
type ReplyReader struct {
	rd       io.Reader
	buf      []byte
	r, w     int
	maxValue int
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

// Fill blocks until at least one more byte is buffered; a reader uses it to
// notice a closed connection while no reply is expected.
func (rr *ReplyReader) Fill() error {
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
	}
	return rr.fill()
}

// ReadReply reads one whole reply of the given kind into out, replacing its
// contents. Any error leaves the connection out of step: close it.
func (rr *ReplyReader) ReadReply(kind ReplyKind, out *Reply) error {
	out.Reset()
	for {
		line, err := rr.readLine()
		if err != nil {
			return err
		}
		body := trimCRLF(line)
		switch {
		case kind == ReplyRetrieval && bytes.HasPrefix(body, []byte("VALUE ")):
			if err := rr.readValue(body, line, out); err != nil {
				return err
			}
		case kind == ReplyStats && bytes.HasPrefix(body, []byte("STAT ")):
			out.Raw = append(out.Raw, line...)
		case kind != ReplyLine && string(body) == "END":
			out.Raw = append(out.Raw, line...)
			return nil
		default:
			out.IsError = isErrorLine(body)
			if kind != ReplyLine && !out.IsError {
				return fmt.Errorf("%w: unexpected %q", ErrBadReply, clip(body))
			}
			out.Raw = append(out.Raw, line...)
			return nil
		}
	}
}

// readValue appends one "VALUE <key> <flags> <bytes> [<cas>]" header and
// its data block to out.
func (rr *ReplyReader) readValue(body, line []byte, out *Reply) error {
	f := tokenize(body, nil)
	if len(f) != 4 && len(f) != 5 {
		return fmt.Errorf("%w: bad VALUE line %q", ErrBadReply, clip(body))
	}
	n, ok := parseInt32(f[3])
	if !ok || n < 0 || int(n) > rr.maxValue {
		return fmt.Errorf("%w: bad VALUE length %q", ErrBadReply, clip(f[3]))
	}
	start := len(out.Raw)
	keyStart := start + len("VALUE ")
	out.Raw = append(out.Raw, line...)
	need := int(n) + 2
	have := len(out.Raw)
	out.Raw = grow(out.Raw, need)
	got := copy(out.Raw[have:], rr.buf[rr.r:rr.w])
	rr.r += got
	if got < need {
		if _, err := io.ReadFull(rr.rd, out.Raw[have+got:]); err != nil {
			return err
		}
	}
	if out.Raw[len(out.Raw)-2] != '\r' || out.Raw[len(out.Raw)-1] != '\n' {
		return fmt.Errorf("%w: value of %d bytes not followed by CRLF", ErrBadReply, n)
	}
	out.Values = append(out.Values, Value{KeyStart: keyStart, KeyEnd: keyStart + len(f[1]), Start: start, End: len(out.Raw)})
	return nil
}

// readLine returns the next line including its line ending.
func (rr *ReplyReader) readLine() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(rr.buf[rr.r+scanned:rr.w], '\n'); i >= 0 {
			end := rr.r + scanned + i + 1
			line := rr.buf[rr.r:end]
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
				nb := make([]byte, 2*len(rr.buf))
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

func trimCRLF(b []byte) []byte {
	b = b[:len(b)-1] // the '\n'
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

func isErrorLine(b []byte) bool {
	return string(b) == "ERROR" || bytes.HasPrefix(b, []byte("ERROR ")) ||
		bytes.HasPrefix(b, []byte("CLIENT_ERROR")) || bytes.HasPrefix(b, []byte("SERVER_ERROR"))
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
