package textclient

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// readBuffer is the read buffer of a Conn.
const readBuffer = 16 << 10

// Conn is one text-protocol connection to a loopback address. Commands are
// appended to Buf and sent together by Flush; the embedded Reader reads the
// replies. It is owned by one goroutine.
type Conn struct {
	*Reader
	c net.Conn
	// Buf holds the commands not yet sent. The Append methods add to it;
	// a caller may also append bytes of its own.
	Buf []byte
}

// Dial connects to addr, which must be a loopback address (see
// ResolveLoopback).
func Dial(addr string, timeout time.Duration) (*Conn, error) {
	dial, err := ResolveLoopback(addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", dial, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", dial, err)
	}
	return &Conn{Reader: NewReader(c, readBuffer), c: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Flush sets deadline for the whole exchange (the write and the replies
// read after it), writes Buf and empties it.
func (c *Conn) Flush(deadline time.Time) error {
	if err := c.c.SetDeadline(deadline); err != nil {
		return err
	}
	_, err := c.c.Write(c.Buf)
	c.Buf = c.Buf[:0]
	return err
}

// AppendStorage appends "<cmd> <key> <flags> 0 <n>[ <cas>]\r\n<value>\r\n"
// (exptime 0): set, add, replace, append, prepend, or cas with withCas.
func (c *Conn) AppendStorage(cmd, key string, flags uint32, value []byte, cas uint64, withCas bool) {
	c.Buf = append(c.Buf, cmd...)
	c.Buf = append(c.Buf, ' ')
	c.Buf = append(c.Buf, key...)
	c.Buf = append(c.Buf, ' ')
	c.Buf = strconv.AppendUint(c.Buf, uint64(flags), 10)
	c.Buf = append(c.Buf, " 0 "...)
	c.Buf = strconv.AppendInt(c.Buf, int64(len(value)), 10)
	if withCas {
		c.Buf = append(c.Buf, ' ')
		c.Buf = strconv.AppendUint(c.Buf, cas, 10)
	}
	c.Buf = append(c.Buf, "\r\n"...)
	c.Buf = append(c.Buf, value...)
	c.Buf = append(c.Buf, "\r\n"...)
}

// AppendSet appends "set <key> 0 0 <n>\r\n<value>\r\n".
func (c *Conn) AppendSet(key string, value []byte) {
	c.AppendStorage("set", key, 0, value, 0, false)
}

// AppendCommand appends a command line: cmd and its arguments separated by
// spaces ("get k1 k2", "incr k 1", "stats backends").
func (c *Conn) AppendCommand(cmd string, args ...string) {
	c.Buf = append(c.Buf, cmd...)
	for _, a := range args {
		c.Buf = append(c.Buf, ' ')
		c.Buf = append(c.Buf, a...)
	}
	c.Buf = append(c.Buf, "\r\n"...)
}
