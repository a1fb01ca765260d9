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
//
// They are made as raw system calls: on a non-blocking socket none of them
// can block, so the Go scheduler's bookkeeping around a call that might
// (handing the thread's P to another thread) is pure cost on the hot path.

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
//
// A client's reader is budgeted: budget is how many more bytes it may read
// in the current loop turn (turn_budget.go), and past it the reader reports
// ErrWouldBlock without reading. A backend's reader is not: a backend sends
// only the replies it was asked for.
type fdReader struct {
	fd       int
	drained  bool
	budgeted bool
	budget   int
	n        uint64 // bytes read, in all
}

// ready is called when epoll reports the socket readable.
func (r *fdReader) ready() { r.drained = false }

func (r *fdReader) Read(p []byte) (int, error) {
	if r.drained || len(p) == 0 {
		return 0, protocol.ErrWouldBlock
	}
	if r.budgeted {
		if r.budget <= 0 {
			return 0, protocol.ErrWouldBlock
		}
		p = p[:min(len(p), r.budget)]
	}
	for {
		n, err := rawRead(r.fd, p)
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
		r.budget -= n // unused unless budgeted
		return n, nil
	}
}

// writeSome writes what the socket takes of b. A full socket buffer is not
// an error: the caller waits for EPOLLOUT and writes the rest.
func writeSome(fd int, b []byte) (int, error) {
	for {
		n, err := rawWrite(fd, b)
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
		n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
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

// takeFd moves the socket of a connection that the net package opened (a
// dialed backend) to an event loop: it duplicates the descriptor,
// non-blocking and close-on-exec, and closes conn, whose descriptor the Go
// runtime's poller then forgets. The socket stays open through the
// duplicate; for a moment it takes two descriptors, which the descriptor
// budget reserves (descriptors.go). Clients are accepted without it
// (accept.go).
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
	fd, err := dupSocket(raw)
	conn.Close()
	return fd, err
}

// dupSocket duplicates raw's socket as a new descriptor, non-blocking and
// close-on-exec, for an event loop or the runtime poller to own.
func dupSocket(raw syscall.RawConn) (int, error) {
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("dup socket: %w", err)
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup socket: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}

// pollNow is epoll_wait with a zero timeout, made as a raw system call: it
// cannot block, so it skips the Go scheduler's bookkeeping for a call
// that might.
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
