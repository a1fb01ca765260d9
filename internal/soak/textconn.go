package soak

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

// This is the soak's own reading of the text protocol. internal/bench's
// ReplyReader only understands STORED and gets whose values it discards,
// and internal/failover's connection is unexported and knows set and get
// only; the soak needs values, flags and cas uniques, and the replies of
// cas, delete, incr and add. Number parsing and the loopback check are
// internal/bench's.

// errDesync is wrapped by every error for a reply that is malformed or not
// the one the command calls for: the connection is out of step after it and
// must be closed.
var errDesync = errors.New("unexpected reply")

// maxValueBytes bounds the data block a VALUE line may announce.
const maxValueBytes = 1 << 20

// textConn is one raw memcached text-protocol connection to a loopback
// address. It is owned by one goroutine and not safe for concurrent use.
type textConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte // the commands being written
	val []byte // the data block of the last VALUE read
}

// dialText connects to addr, which must be a loopback address.
func dialText(addr string, timeout time.Duration) (*textConn, error) {
	dial, err := bench.ResolveLoopback(addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", dial, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", dial, err)
	}
	return &textConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (t *textConn) Close() error { return t.c.Close() }

// flush writes t.buf, setting deadline for the whole exchange, and empties
// the buffer.
func (t *textConn) flush(deadline time.Time) error {
	if err := t.c.SetDeadline(deadline); err != nil {
		return err
	}
	_, err := t.c.Write(t.buf)
	t.buf = t.buf[:0]
	return err
}

// appendStorage appends "<cmd> <key> <flags> 0 <n>[ <cas>]\r\n<value>\r\n".
func (t *textConn) appendStorage(cmd, key string, flags uint32, value []byte, cas uint64, withCas bool) {
	t.buf = append(t.buf, cmd...)
	t.buf = append(t.buf, ' ')
	t.buf = append(t.buf, key...)
	t.buf = append(t.buf, ' ')
	t.buf = strconv.AppendUint(t.buf, uint64(flags), 10)
	t.buf = append(t.buf, " 0 "...)
	t.buf = strconv.AppendInt(t.buf, int64(len(value)), 10)
	if withCas {
		t.buf = append(t.buf, ' ')
		t.buf = strconv.AppendUint(t.buf, cas, 10)
	}
	t.buf = append(t.buf, "\r\n"...)
	t.buf = append(t.buf, value...)
	t.buf = append(t.buf, "\r\n"...)
}

// appendLine appends a command line made of words.
func (t *textConn) appendLine(words ...string) {
	for i, w := range words {
		if i > 0 {
			t.buf = append(t.buf, ' ')
		}
		t.buf = append(t.buf, w...)
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

// isErrorLine reports whether l is one of memcached's error replies; the
// connection is still in step after one.
func isErrorLine(l []byte) bool {
	return bytes.HasPrefix(l, []byte("SERVER_ERROR")) || bytes.HasPrefix(l, []byte("CLIENT_ERROR")) ||
		bytes.Equal(l, []byte("ERROR"))
}

// value is one VALUE block of a retrieval reply; Key and Data are valid
// until the next read.
type value struct {
	Key    []byte
	Flags  uint32
	Cas    uint64
	HasCas bool
	Data   []byte
}

// readValue reads the next line of a retrieval reply. It returns end=true
// at END, errLine for an error line (the connection still in step), or a
// VALUE block in v.
func (t *textConn) readValue(v *value) (end bool, errLine []byte, err error) {
	l, err := t.line()
	if err != nil {
		return false, nil, err
	}
	if bytes.Equal(l, []byte("END")) {
		return true, nil, nil
	}
	rest, ok := bytes.CutPrefix(l, []byte("VALUE "))
	if !ok {
		if isErrorLine(l) {
			return false, l, nil
		}
		return false, nil, fmt.Errorf("%w to a retrieval: %.80q", errDesync, l)
	}
	f := bytes.Split(rest, []byte(" "))
	if len(f) != 3 && len(f) != 4 {
		return false, nil, fmt.Errorf("%w: malformed %.80q", errDesync, l)
	}
	flags, ok1 := bench.ParseUint(f[1], 1<<32-1)
	n, ok2 := bench.ParseUint(f[2], maxValueBytes)
	v.HasCas = len(f) == 4
	v.Cas = 0
	ok3 := true
	if v.HasCas {
		v.Cas, ok3 = bench.ParseUint(f[3], 1<<64-1)
	}
	if len(f[0]) == 0 || !ok1 || !ok2 || !ok3 {
		return false, nil, fmt.Errorf("%w: malformed %.80q", errDesync, l)
	}
	// The key lives in the read buffer, which the data read below may
	// overwrite: keep a copy in front of the data.
	need := len(f[0]) + int(n) + 2
	if cap(t.val) < need {
		t.val = make([]byte, need)
	}
	t.val = t.val[:need]
	copy(t.val, f[0])
	kl := len(f[0])
	if _, err := io.ReadFull(t.br, t.val[kl:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return false, nil, err
	}
	if t.val[need-2] != '\r' || t.val[need-1] != '\n' {
		return false, nil, fmt.Errorf("%w: data block of %q not ended by CRLF", errDesync, t.val[:kl])
	}
	v.Key, v.Flags, v.Data = t.val[:kl], uint32(flags), t.val[kl:need-2]
	return false, nil, nil
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
		name, val, _ := bytes.Cut(rest, []byte(" "))
		m[string(name)] = string(val)
	}
}
