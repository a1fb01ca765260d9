package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// The messages of a handover, on a SOCK_SEQPACKET Unix socket ("unixpacket"),
// which keeps each message, and the descriptor it carries, whole:
//
//	new -> old  hello   "mcproxy-handover 1"
//	old -> new  L addr  a listening socket (SCM_RIGHTS), once per listener
//	old -> new  l       no more listeners
//	old -> new  S       a client socket (SCM_RIGHTS) and its reader state:
//	                    started (1 byte), bytes of a refused data block still
//	                    to skip (8), unparsed bytes that follow (4), the
//	                    client's address (2 + its length)
//	old -> new  D data  the next unparsed bytes of the last S, handoverChunk at most
//	old -> new  E       no more clients
//	new -> old  A       the new process holds every socket it was sent
const (
	msgListener      = 'L'
	msgListenersDone = 'l'
	msgSession       = 'S'
	msgData          = 'D'
	msgEnd           = 'E'
	msgAck           = 'A'
)

// handoverHello opens a handover, naming the version of these messages.
const handoverHello = "mcproxy-handover 1"

// handoverChunk bounds a message's payload, well under a Unix socket's
// send buffer, which bounds a SOCK_SEQPACKET message.
const handoverChunk = 32 << 10

// sessionHeaderLen is an S message's fixed part, after its kind byte.
const sessionHeaderLen = 1 + 8 + 4 + 2

// writeMsg sends one message, with the descriptor fd unless fd < 0.
func writeMsg(conn *net.UnixConn, b []byte, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(handoverWrite))
	n, oobn, err := conn.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return fmt.Errorf("send %q message: %w", b[0], err)
	}
	if n != len(b) || oobn != len(oob) {
		return fmt.Errorf("send %q message: short write (%d of %d bytes)", b[0], n, len(b))
	}
	return nil
}

// writeSession sends a detached session: its socket and reader state.
func writeSession(conn *net.UnixConn, x handed) error {
	if len(x.remote) > 1<<16-1 {
		x.remote = x.remote[:1<<16-1]
	}
	b := make([]byte, 1+sessionHeaderLen, 1+sessionHeaderLen+len(x.remote))
	b[0] = msgSession
	if x.state.Started {
		b[1] = 1
	}
	binary.BigEndian.PutUint64(b[2:10], uint64(x.state.Swallow))
	binary.BigEndian.PutUint32(b[10:14], uint32(len(x.state.Unparsed)))
	binary.BigEndian.PutUint16(b[14:16], uint16(len(x.remote)))
	b = append(b, x.remote...)
	if err := writeMsg(conn, b, x.fd); err != nil {
		return err
	}
	for rest := x.state.Unparsed; len(rest) > 0; {
		n := min(len(rest), handoverChunk)
		if err := writeMsg(conn, append([]byte{msgData}, rest[:n]...), -1); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// wireReader reads handover messages; buf and oob are its scratch space.
type wireReader struct {
	conn *net.UnixConn
	buf  []byte
	oob  []byte
}

func newWireReader(conn *net.UnixConn) *wireReader {
	return &wireReader{conn: conn, buf: make([]byte, 1+handoverChunk), oob: make([]byte, unix.CmsgSpace(4*4))}
}

// read returns the next message and the descriptor it carried (-1 if
// none); the payload is valid until the next read. A message with more
// than one descriptor, or cut short, is an error, and its descriptors are
// closed.
func (r *wireReader) read() (kind byte, payload []byte, fd int, err error) {
	n, oobn, flags, _, err := r.conn.ReadMsgUnix(r.buf, r.oob)
	fd = -1
	if oobn > 0 {
		fds, perr := receivedFds(r.oob[:oobn])
		switch {
		case perr != nil:
			err = errors.Join(err, perr)
		case len(fds) == 1:
			fd = fds[0]
		default:
			closeAll(fds)
			err = errors.Join(err, fmt.Errorf("a message carried %d descriptors", len(fds)))
		}
	}
	if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		err = errors.New("a message was cut short")
	}
	if err == nil && n == 0 {
		err = errors.New("empty message: the other process closed the handover")
	}
	if err != nil {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		return 0, nil, -1, fmt.Errorf("read handover message: %w", err)
	}
	if fd >= 0 {
		unix.CloseOnExec(fd)
	}
	return r.buf[0], r.buf[1:n], fd, nil
}

// receivedFds returns the descriptors in the control messages oob.
func receivedFds(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("parse descriptors: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
