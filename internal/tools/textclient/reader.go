package textclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Replies that mean the server answered the command with an error line. The
// connection is still in step after them: exactly one reply was consumed.
// Reader.LastError holds the text of the line.
var (
	ErrServerError = errors.New("SERVER_ERROR reply")
	ErrClientError = errors.New("CLIENT_ERROR reply")
	ErrErrorReply  = errors.New("ERROR reply")
)

// ErrProtocol is wrapped by every error for a reply that is malformed or not
// the one the command calls for. The connection is out of step after it and
// must be closed.
var ErrProtocol = errors.New("unexpected reply")

// IsErrorReply reports whether err is one of the error-line sentinels, after
// which the connection is still in step.
func IsErrorReply(err error) bool {
	return err == ErrServerError || err == ErrClientError || err == ErrErrorReply
}

// minBuffer is the smallest read buffer: room for any reply line the tools
// expect (a VALUE line with a 250-byte key, a STAT line).
const minBuffer = 4096

// Reader parses replies. It reads in place from its buffer: a line or value
// it returns is valid until the next read.
type Reader struct {
	r       *bufio.Reader
	lastErr []byte
	val     []byte // key and data block of the last value ReadValue kept
}

// NewReader returns a Reader with a read buffer of size bytes (at least
// 4096).
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, max(size, minBuffer))}
}

// Reset makes rr read from r, dropping any buffered bytes.
func (rr *Reader) Reset(r io.Reader) { rr.r.Reset(r) }

// LastError returns the line (without CRLF) of the last error reply, valid
// until the next read.
func (rr *Reader) LastError() []byte { return rr.lastErr }

// Line returns the next line without its CRLF.
func (rr *Reader) Line() ([]byte, error) {
	l, err := rr.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, rr.r.Size())
		}
		return nil, noEOF(err)
	}
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not ended by CRLF: %.80q", ErrProtocol, l)
	}
	return l[:len(l)-2], nil
}

// errorLine maps an error reply line to its sentinel error, or returns nil.
func (rr *Reader) errorLine(l []byte) error {
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

// ReadStatus reads a one-line reply (STORED, DELETED, a number...): the
// line, or one of the Err*Reply errors for an error line.
func (rr *Reader) ReadStatus() ([]byte, error) {
	l, err := rr.Line()
	if err != nil {
		return nil, err
	}
	if err := rr.errorLine(l); err != nil {
		return nil, err
	}
	return l, nil
}

// ReadStored reads the reply to a set: nil for STORED, one of the Err*Reply
// errors for an error line, an ErrProtocol error for anything else, or the
// read error.
func (rr *Reader) ReadStored() error {
	l, err := rr.ReadStatus()
	if err != nil {
		return err
	}
	if !bytes.Equal(l, []byte("STORED")) {
		return fmt.Errorf("%w to set: %.80q", ErrProtocol, l)
	}
	return nil
}

// ReadStats reads "STAT <name> <value>" lines until END into a map. An
// error line in place of the reply returns one of the Err*Reply errors.
func (rr *Reader) ReadStats() (map[string]string, error) {
	m := make(map[string]string, 64)
	for first := true; ; first = false {
		rest, end, err := rr.readItem("STAT ", "stats", first)
		if err != nil {
			return nil, err
		}
		if end {
			return m, nil
		}
		name, value, _ := bytes.Cut(rest, []byte(" "))
		m[string(name)] = string(value)
	}
}

// readItem reads one line of a multi-line reply (VALUE or STAT lines until
// END): end at END, else the rest of a line that begins with prefix. An
// error line returns one of the Err*Reply errors where errorAllowed (in
// place of the whole reply), an ErrProtocol error elsewhere, as does any
// other line; what names the command in the message.
func (rr *Reader) readItem(prefix, what string, errorAllowed bool) (rest []byte, end bool, err error) {
	l, err := rr.Line()
	if err != nil {
		return nil, false, err
	}
	if bytes.Equal(l, []byte("END")) {
		return nil, true, nil
	}
	if rest, ok := bytes.CutPrefix(l, []byte(prefix)); ok {
		return rest, false, nil
	}
	if errorAllowed {
		if err := rr.errorLine(l); err != nil {
			return nil, false, err
		}
	}
	return nil, false, fmt.Errorf("%w to %s: %.80q", ErrProtocol, what, l)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
