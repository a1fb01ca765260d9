package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The new half of a handover (handover.go): the new process asks the old
// one for its listening sockets, serves on them, and takes in the clients
// the old one sends, each with the bytes it had read and not parsed.
// TLS sessions cannot go over this way (their keys live in the old
// process); when they come, they drain in the old process.

// TakeListeners opens a handover on conn, a connection to the old
// process's upgrade socket: it asks for the old process's listening
// sockets and returns them, within timeout. The old process stops
// accepting once it has sent them: serve on every one (Serve), then call
// Adopt to take its clients.
func TakeListeners(conn *net.UnixConn, timeout time.Duration) ([]net.Listener, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	if _, err := conn.Write([]byte(handoverHello)); err != nil {
		return nil, fmt.Errorf("proxy: ask for a handover: %w", err)
	}
	r := newWireReader(conn)
	var lns []net.Listener
	for {
		kind, payload, fd, err := r.read()
		if err == nil && kind == msgListenersDone {
			return lns, nil
		}
		if err == nil && (kind != msgListener || fd < 0) {
			err = fmt.Errorf("unexpected %q message", kind)
		}
		var ln net.Listener
		if err == nil {
			ln, err = listenerOf(fd, string(payload))
		} else if fd >= 0 {
			_ = unix.Close(fd)
		}
		if err != nil {
			// Closing what came would reset the clients in its queue; but
			// the old process accepts on until the handover is done, and
			// has not stopped (it stops only after the last listener).
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("proxy: take the listeners: %w", err)
		}
		lns = append(lns, ln)
	}
}

// listenerOf makes a listener of a received listening socket.
func listenerOf(fd int, addr string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), "listener "+addr)
	defer f.Close() // FileListener has its own descriptor
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", addr, err)
	}
	return ln, nil
}

// AwaitHandOver reads, within timeout, a new process's request for a
// handover on conn, accepted on the upgrade socket; then call HandOver.
func AwaitHandOver(conn *net.UnixConn, timeout time.Duration) error {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	b := make([]byte, 64)
	n, err := conn.Read(b)
	if err != nil {
		return fmt.Errorf("proxy: read a handover request: %w", err)
	}
	if string(b[:n]) != handoverHello {
		return fmt.Errorf("proxy: not a handover request (%q); this process speaks %q", b[:n], handoverHello)
	}
	return nil
}

// Adopt takes in the client connections the old process sends on conn,
// after TakeListeners, and serves each where the old process stopped. It
// returns nil when the old process has sent its last one, and an error
// when the old process goes quiet for longer than idle or the messages go
// wrong; the clients taken in so far are served either way.
func (p *Proxy) Adopt(conn *net.UnixConn, idle time.Duration) error {
	r := newWireReader(conn)
	adopted := 0
	defer func() { p.log.Info("took clients over from the old process", zap.Int("clients", adopted)) }()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		kind, payload, fd, err := r.read()
		if err != nil {
			return fmt.Errorf("proxy: adopt: %w", err)
		}
		switch {
		case kind == msgEnd && fd < 0:
			_ = conn.SetWriteDeadline(time.Now().Add(handoverWrite))
			if _, err := conn.Write([]byte{msgAck}); err != nil {
				return fmt.Errorf("proxy: adopt: acknowledge the end: %w", err)
			}
			return nil
		case kind == msgSession && fd >= 0:
			if err := p.adoptOne(r, payload, fd); err != nil {
				return fmt.Errorf("proxy: adopt: %w", err)
			}
			adopted++
			p.stats.adopted.Add(1)
		default:
			if fd >= 0 {
				_ = unix.Close(fd)
			}
			return fmt.Errorf("proxy: adopt: unexpected %q message", kind)
		}
	}
}

// adoptOne reads the rest of the client of an S message (its unparsed
// bytes come in D messages) and serves it. It owns fd.
func (p *Proxy) adoptOne(r *wireReader, header []byte, fd int) error {
	if len(header) < sessionHeaderLen {
		_ = unix.Close(fd)
		return errors.New("short client message")
	}
	st := protocol.ReaderState{Started: header[0] == 1}
	swallow := binary.BigEndian.Uint64(header[1:9])
	unparsed := int(binary.BigEndian.Uint32(header[9:13]))
	remoteLen := int(binary.BigEndian.Uint16(header[13:15]))
	if swallow > 1<<40 || unparsed > protocol.MaxUnparsed || len(header) != sessionHeaderLen+remoteLen {
		_ = unix.Close(fd)
		return errors.New("malformed client message")
	}
	st.Swallow = int(swallow)
	remote := string(header[sessionHeaderLen:])
	st.Unparsed = make([]byte, 0, unparsed)
	for len(st.Unparsed) < unparsed {
		kind, data, extra, err := r.read()
		if err == nil && (kind != msgData || extra >= 0 || len(st.Unparsed)+len(data) > unparsed) {
			if extra >= 0 {
				_ = unix.Close(extra)
			}
			err = fmt.Errorf("unexpected %q message in client %s's bytes", kind, remote)
		}
		if err != nil {
			_ = unix.Close(fd)
			return err
		}
		st.Unparsed = append(st.Unparsed, data...)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("client %s: set non-blocking: %w", remote, err)
	}
	// Taken in past limits.max_connections too: the client is connected
	// already, and the old process counted it within its own limit.
	p.enroll(fd, remote, func(s *session) error { return s.rr.Restore(st) })
	return nil
}
