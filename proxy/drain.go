package proxy

import "time"

// drainQuiet is how long a client of a stopping proxy may stay silent
// before the proxy takes it that the client has sent everything it is
// going to send. A command already in the socket buffer when shutdown
// began is read at once; one still on the wire arrives well within this
// on a LAN, even on a loaded host. It stays short because every session
// waits it out at least once, in parallel, before the proxy can exit.
const drainQuiet = 200 * time.Millisecond

// A session's read states. They only move forward: open -> draining ->
// stopped, or open -> stopped.
const (
	readOpen     int32 = iota // reading, with the idle timeout if set
	readDraining              // shutting down: reading until quiet for drainQuiet
	readStopped               // not reading: quit or a write error
)

// setReadDeadline applies the read deadline of state st to the client
// connection. It is called by the reader before every read and by whoever
// moves the state on, to wake a read blocked under the old deadline.
func (s *session) setReadDeadline(st int32) {
	switch st {
	case readOpen:
		if d := s.p.opts.ClientIdleTimeout; d > 0 {
			_ = s.conn.SetReadDeadline(time.Now().Add(d))
		}
	case readDraining:
		_ = s.conn.SetReadDeadline(time.Now().Add(drainQuiet))
	default:
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// drain starts a graceful end of the session, on Shutdown: the session
// keeps reading and answering commands until the client has been quiet for
// drainQuiet (or leaves), then writes the replies it owes and half-closes.
func (s *session) drain() {
	if s.readState.CompareAndSwap(readOpen, readDraining) {
		s.setReadDeadline(readDraining)
	}
}

// closeDrained ends a drained session whose replies have all been written.
// It half-closes first, so the client reads EOF after its last reply, then
// reads and throws away whatever the client still sends for up to
// drainQuiet: closing a socket with unread bytes makes the kernel send a
// reset, which can destroy replies the client has not read yet.
func (s *session) closeDrained() {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = s.conn.SetReadDeadline(time.Now().Add(drainQuiet))
		buf := make([]byte, 4096)
		for {
			if _, err := s.conn.Read(buf); err != nil {
				break // EOF, the deadline, or Shutdown closing the connection
			}
		}
	}
	_ = s.conn.Close()
}
