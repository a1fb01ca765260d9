package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"

	"github.com/mcproxy/mcproxy/protocol"
	"golang.org/x/sys/unix"
)

// The system calls of the event loops, on non-blocking sockets.

// fdReader is the io.Reader a loop's parsers read a socket through. It
// returns protocol.ErrWouldBlock when the socket has nothing more, and the
// parsers resume on the next call.
//
// A read that comes back short means the socket's receive queue was empty
// when it ran; the next read would almost surely find nothing and cost a
// system call for EAGAIN. So after a short read the reader reports
// ErrWouldBlock without asking, until the loop says the socket is readable
// again (ready). With level-triggered epoll nothing is lost: bytes that came
// in since make the socket readable on the next turn.
type fdReader struct {
	fd      int
	drained bool
	n       uint64 // bytes read, in all
}

// ready is called when epoll reports the socket readable.
func (r *fdReader) ready() { r.drained = false }

func (r *fdReader) Read(p []byte) (int, error) {
	if r.drained || len(p) == 0 {
		return 0, protocol.ErrWouldBlock
	}
	for {
		n, err := unix.Read(r.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.drained = true
			return 0, protocol.ErrWouldBlock
		case err != nil:
			return 0, fmt.Errorf("read: %w", err)
		case n == 0:
			return 0, io.EOF
		}
		if n < len(p) {
			r.drained = true
		}
		r.n += uint64(n)
		return n, nil
	}
}

// writeSome writes what the socket takes of b. A full socket buffer is not
// an error: the caller waits for EPOLLOUT and writes the rest.
func writeSome(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("write: %w", err)
		}
		return n, nil
	}
}

// maxIovecs is the most buffers one writev takes (Linux's IOV_MAX).
const maxIovecs = 1024

// writev writes bufs, starting off bytes into the first, in one system
// call and returns how many bytes the socket took. iov is scratch space
// kept by the caller, so the call allocates nothing.
func writev(fd int, bufs [][]byte, off int, iov []unix.Iovec) (int, []unix.Iovec, error) {
	iov = iov[:0]
	for i, b := range bufs {
		if i == 0 {
			b = b[off:]
		}
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, iov, nil
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return 0, iov, nil
		case errno != 0:
			return 0, iov, fmt.Errorf("writev: %w", errno)
		}
		return int(n), iov, nil
	}
}

// takeFd moves the socket of a connection that the net package opened (an
// accepted client, a dialed backend) to an event loop: it duplicates the
// descriptor, non-blocking and close-on-exec, and closes conn, whose
// descriptor the Go runtime's poller then forgets. The socket stays open
// through the duplicate.
func takeFd(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		conn.Close()
		return -1, errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		conn.Close()
		return -1, fmt.Errorf("syscall conn: %w", err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		dupErr = err
	}
	conn.Close()
	if dupErr != nil {
		return -1, fmt.Errorf("dup socket: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}
