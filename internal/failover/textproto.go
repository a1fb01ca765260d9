package failover

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/mcproxy/mcproxy/internal/bench"
)

// errDesync is wrapped by every error for a reply that is malformed or not
// the one the command calls for: the connection is out of step after it and
// must be closed.
var errDesync = errors.New("unexpected reply")

// textConn is one raw memcached text-protocol connection to a loopback
// address. It is not safe for concurrent use.
type textConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte // the command being written
	val []byte // the value of the last VALUE block read
	key []byte // the key of the last VALUE block read
}

// dialText connects to addr, which must be a loopback address.
func dialText(addr string, timeout time.Duration) (*textConn, error) {
	dial, err := bench.ResolveLoopback(addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", dial, timeout)
	if err != nil {
		return nil, err
	}
	return &textConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (t *textConn) Close() error { return t.c.Close() }

// send writes the command in t.buf with the given deadline for the whole
// exchange.
func (t *textConn) send(deadline time.Time) error {
	if err := t.c.SetDeadline(deadline); err != nil {
		return err
	}
	_, err := t.c.Write(t.buf)
	return err
}

// appendSet appends "set <key> 0 0 <n>\r\n<value>\r\n" to t.buf.
func (t *textConn) appendSet(key string, value []byte) {
	t.buf = append(t.buf, "set "...)
	t.buf = append(t.buf, key...)
	t.buf = append(t.buf, " 0 0 "...)
	t.buf = strconv.AppendInt(t.buf, int64(len(value)), 10)
	t.buf = append(t.buf, "\r\n"...)
	t.buf = append(t.buf, value...)
	t.buf = append(t.buf, "\r\n"...)
}

// appendGet appends "get <keys...>\r\n" to t.buf.
func (t *textConn) appendGet(keys ...string) {
	t.buf = append(t.buf, "get"...)
	for _, k := range keys {
		t.buf = append(t.buf, ' ')
		t.buf = append(t.buf, k...)
	}
	t.buf = append(t.buf, "\r\n"...)
}

// line reads one reply line and returns it without CRLF; it is valid until
// the next read.
func (t *textConn) line() ([]byte, error) {
	l, err := t.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errDesync, t.br.Size())
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not ended by CRLF: %.80q", errDesync, l)
	}
	return l[:len(l)-2], nil
}

// isErrorLine reports whether l is one of memcached's error replies.
func isErrorLine(l []byte) bool {
	return bytes.HasPrefix(l, []byte("SERVER_ERROR")) || bytes.HasPrefix(l, []byte("CLIENT_ERROR")) ||
		bytes.Equal(l, []byte("ERROR"))
}

// readStatus reads a one-line reply (STORED, NOT_STORED, an error line...)
// and returns it as a string.
func (t *textConn) readStatus() (string, error) {
	l, err := t.line()
	if err != nil {
		return "", err
	}
	return string(l), nil
}

// readValues reads the reply to a get: VALUE blocks until END, calling fn
// with each key and value (valid only during the call). If the reply is an
// error line instead, it returns that line with a nil error; the connection
// is still in step then.
func (t *textConn) readValues(fn func(key, value []byte)) (errLine string, err error) {
	first := true
	for {
		l, err := t.line()
		if err != nil {
			return "", err
		}
		if bytes.Equal(l, []byte("END")) {
			return "", nil
		}
		if !bytes.HasPrefix(l, []byte("VALUE ")) {
			if first && isErrorLine(l) {
				return string(l), nil
			}
			return "", fmt.Errorf("%w to get: %.80q", errDesync, l)
		}
		first = false
		key, n, ok := bench.ParseValueLine(l[len("VALUE "):])
		if !ok {
			return "", fmt.Errorf("%w: malformed %.80q", errDesync, l)
		}
		t.key = append(t.key[:0], key...) // l is overwritten by the next read
		key = t.key
		if cap(t.val) < n+2 {
			t.val = make([]byte, n+2)
		}
		t.val = t.val[:n+2]
		if _, err := io.ReadFull(t.br, t.val); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if t.val[n] != '\r' || t.val[n+1] != '\n' {
			return "", fmt.Errorf("%w: data block of %q not ended by CRLF", errDesync, key)
		}
		fn(key, t.val[:n])
	}
}

// readOne reads the reply to a get of one key: found tells whether a VALUE
// came back, and value is its data (valid until the next read). An error
// line instead of the reply is returned as errLine with a nil error.
func (t *textConn) readOne(key []byte) (found bool, value []byte, errLine []byte, err error) {
	l, err := t.line()
	if err != nil {
		return false, nil, nil, err
	}
	if bytes.Equal(l, []byte("END")) {
		return false, nil, nil, nil
	}
	if !bytes.HasPrefix(l, []byte("VALUE ")) {
		if isErrorLine(l) {
			return false, nil, l, nil
		}
		return false, nil, nil, fmt.Errorf("%w to get: %.80q", errDesync, l)
	}
	k, n, ok := bench.ParseValueLine(l[len("VALUE "):])
	if !ok {
		return false, nil, nil, fmt.Errorf("%w: malformed %.80q", errDesync, l)
	}
	if !bytes.Equal(k, key) {
		return false, nil, nil, fmt.Errorf("%w: VALUE for key %.80q, asked for %q", errDesync, k, key)
	}
	if cap(t.val) < n+2 {
		t.val = make([]byte, n+2)
	}
	t.val = t.val[:n+2]
	if _, err := io.ReadFull(t.br, t.val); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return false, nil, nil, err
	}
	if t.val[n] != '\r' || t.val[n+1] != '\n' {
		return false, nil, nil, fmt.Errorf("%w: data block of %q not ended by CRLF", errDesync, key)
	}
	l, err = t.line()
	if err != nil {
		return false, nil, nil, err
	}
	if !bytes.Equal(l, []byte("END")) {
		return false, nil, nil, fmt.Errorf("%w: %.80q after the value of %q, want END", errDesync, l, key)
	}
	return true, t.val[:n], nil, nil
}

// readStats reads "STAT <name> <value>" lines until END into a map.
func (t *textConn) readStats() (map[string]string, error) {
	m := make(map[string]string, 64)
	for {
		l, err := t.line()
		if err != nil {
			return nil, err
		}
		if bytes.Equal(l, []byte("END")) {
			return m, nil
		}
		rest, ok := bytes.CutPrefix(l, []byte("STAT "))
		if !ok {
			return nil, fmt.Errorf("%w to stats: %.80q", errDesync, l)
		}
		name, value, _ := bytes.Cut(rest, []byte(" "))
		m[string(name)] = string(value)
	}
}

// Values stored by this package are "<key>:<version>:" padded with 'x' to
// the value size; the version tells which set wrote the value (0 for the
// prefill), and the key shows that a reply belongs to the key asked for.

// appendValue appends the value for key at version to dst.
func appendValue(dst []byte, key string, version uint64, size int) []byte {
	start := len(dst)
	dst = append(dst, key...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, ':')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parseValue returns the version in a value written for key, or false if
// the value was not written for key.
func parseValue(key, value []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(value, key)
	if !ok || len(rest) == 0 || rest[0] != ':' {
		return 0, false
	}
	rest = rest[1:]
	i := bytes.IndexByte(rest, ':')
	if i <= 0 {
		return 0, false
	}
	return bench.ParseUint(rest[:i], 1<<64-1)
}
