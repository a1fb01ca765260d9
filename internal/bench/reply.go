package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Replies that mean the server answered the command with an error line. The
// connection is still in step after them: exactly one reply was consumed.
// ReplyReader.LastError holds the text of the line.
var (
	ErrServerError = errors.New("SERVER_ERROR reply")
	ErrClientError = errors.New("CLIENT_ERROR reply")
	ErrErrorReply  = errors.New("ERROR reply")
)

// ErrProtocol is wrapped by every error for a reply that is malformed or not
// the one the command calls for. The connection is out of step after it and
// must be closed.
var ErrProtocol = errors.New("unexpected reply")

// maxValueBytes bounds the data block a VALUE line may announce.
const maxValueBytes = 64 << 20

// ReplyReader parses the replies of the commands the workload sends: STORED
// for set, and VALUE ... END for get. It is strict, reads in place from its
// buffer and does not allocate on the success path.
type ReplyReader struct {
	r       *bufio.Reader
	lastErr []byte
}

// NewReplyReader returns a ReplyReader with a read buffer of size bytes (at
// least 4096).
func NewReplyReader(r io.Reader, size int) *ReplyReader {
	return &ReplyReader{r: bufio.NewReaderSize(r, max(size, 4096))}
}

// Reset makes rr read from r, dropping any buffered bytes.
func (rr *ReplyReader) Reset(r io.Reader) { rr.r.Reset(r) }

// LastError returns the line (without CRLF) of the last error reply, valid
// until the next read.
func (rr *ReplyReader) LastError() []byte { return rr.lastErr }

// line returns the next line without its CRLF.
func (rr *ReplyReader) line() ([]byte, error) {
	l, err := rr.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, rr.r.Size())
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not ended by CRLF: %q", ErrProtocol, l)
	}
	return l[:len(l)-2], nil
}

// errorLine maps an error reply line to its sentinel error, or returns nil.
func (rr *ReplyReader) errorLine(l []byte) error {
	var err error
	switch {
	case bytes.HasPrefix(l, []byte("SERVER_ERROR")):
		err = ErrServerError
	case bytes.HasPrefix(l, []byte("CLIENT_ERROR")):
		err = ErrClientError
	case bytes.Equal(l, []byte("ERROR")):
		err = ErrErrorReply
	default:
		return nil
	}
	rr.lastErr = append(rr.lastErr[:0], l...)
	return err
}

// ReadStored reads the reply to a set: nil for STORED, one of the Err*Reply
// errors for an error line, an ErrProtocol error for anything else, or the
// read error.
func (rr *ReplyReader) ReadStored() error {
	l, err := rr.line()
	if err != nil {
		return err
	}
	if bytes.Equal(l, []byte("STORED")) {
		return nil
	}
	if err := rr.errorLine(l); err != nil {
		return err
	}
	return fmt.Errorf("%w to set: %q", ErrProtocol, l)
}

// ReadGet reads the reply to "get keys...": zero or more VALUE blocks, then
// END. It returns how many keys were found. Each VALUE must name one of the
// requested keys, in request order (memcached answers in that order), and
// when checkValue is set its data must begin with its key (the workload
// stores values that way), so a reply meant for another command or key is
// caught. An error line in place of the reply returns one of the Err*Reply
// errors.
func (rr *ReplyReader) ReadGet(keys [][]byte, checkValue bool) (hits int, err error) {
	next := 0 // index of the first requested key not yet matched
	for {
		l, err := rr.line()
		if err != nil {
			return hits, err
		}
		if bytes.Equal(l, []byte("END")) {
			return hits, nil
		}
		if !bytes.HasPrefix(l, []byte("VALUE ")) {
			if hits == 0 {
				if err := rr.errorLine(l); err != nil {
					return 0, err
				}
			}
			return hits, fmt.Errorf("%w to get: %q", ErrProtocol, l)
		}
		key, n, ok := ParseValueLine(l[len("VALUE "):])
		if !ok {
			return hits, fmt.Errorf("%w: malformed %q", ErrProtocol, l)
		}
		j := next
		for j < len(keys) && !bytes.Equal(keys[j], key) {
			j++
		}
		if j == len(keys) {
			return hits, fmt.Errorf("%w: VALUE for key %q not requested (or out of order)", ErrProtocol, key)
		}
		next = j + 1
		if err := rr.data(keys[j], n, checkValue); err != nil {
			return hits, err
		}
		hits++
	}
}

// data consumes a data block of n bytes and its CRLF.
func (rr *ReplyReader) data(key []byte, n int, checkValue bool) error {
	if checkValue {
		m := min(len(key), n)
		p, err := rr.r.Peek(m)
		if err != nil {
			return noEOF(err)
		}
		if !bytes.Equal(p, key[:m]) {
			return fmt.Errorf("%w: value of key %q begins %q, not its key", ErrProtocol, key, p)
		}
	}
	if _, err := rr.r.Discard(n); err != nil {
		return noEOF(err)
	}
	c1, err := rr.r.ReadByte()
	if err != nil {
		return noEOF(err)
	}
	c2, err := rr.r.ReadByte()
	if err != nil {
		return noEOF(err)
	}
	if c1 != '\r' || c2 != '\n' {
		return fmt.Errorf("%w: data block of key %q not ended by CRLF", ErrProtocol, key)
	}
	return nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseValueLine parses the rest of a VALUE line, "<key> <flags> <bytes>
// [<cas>]", without allocating. It is the load tools' own reading of the
// protocol, kept apart from package protocol, whose parsers they test.
func ParseValueLine(b []byte) (key []byte, n int, ok bool) {
	var fields [4][]byte
	nf := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, ' ')
		if i == 0 || nf == len(fields) {
			return nil, 0, false
		}
		if i < 0 {
			i = len(b)
		}
		fields[nf] = b[:i]
		nf++
		b = b[i:]
		if len(b) > 0 {
			b = b[1:]
			if len(b) == 0 { // trailing space
				return nil, 0, false
			}
		}
	}
	if nf < 3 {
		return nil, 0, false
	}
	if _, ok := ParseUint(fields[1], 1<<32-1); !ok {
		return nil, 0, false
	}
	if nf == 4 {
		if _, ok := ParseUint(fields[3], 1<<64-1); !ok {
			return nil, 0, false
		}
	}
	v, ok := ParseUint(fields[2], maxValueBytes)
	if !ok {
		return nil, 0, false
	}
	return fields[0], int(v), true
}

// ParseUint parses a decimal number no larger than limit.
func ParseUint(b []byte, limit uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
