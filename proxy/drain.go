package proxy

import (
	"time"

	"golang.org/x/sys/unix"
)

// drainQuiet is how long a client of a stopping proxy may stay silent
// before the proxy takes it that the client has sent everything it is
// going to send. A command already in the socket buffer when shutdown
// began is read at once; one still on the wire arrives well within this
// on a LAN, even on a loaded host. It stays short because every session
// waits it out at least once, in parallel, before the proxy can exit.
const drainQuiet = 200 * time.Millisecond

// drain starts a graceful end of the session, on Shutdown: the session
// keeps reading and answering commands until the client has been quiet for
// drainQuiet (or leaves), then writes the replies it owes and half-closes.
// It runs on the session's loop.
func (s *session) drain() {
	if s.ended || s.draining() {
		return
	}
	s.drainSince = s.l.now
	if s.readerDone {
		s.maybeEnd()
		return
	}
	s.l.timers.wantScan(s.l.now)
}

// draining reports whether Shutdown has begun the session's drain.
func (s *session) draining() bool { return !s.drainSince.IsZero() }

// startLinger begins the gentle close of a session whose replies have all
// been written: it half-closes, so the client reads EOF after its last
// reply, then reads and throws away whatever the client still sends for up
// to drainQuiet, because closing a socket with unread bytes makes the
// kernel send a reset, which can destroy replies the client has not read
// yet.
func (s *session) startLinger() {
	if err := unix.Shutdown(s.fd, unix.SHUT_WR); err != nil {
		s.end()
		return
	}
	s.lingerUntil = s.l.now.Add(drainQuiet)
	s.paused, s.wantWrite = false, false
	s.setInterest()
	s.l.timers.wantScan(s.l.now)
	s.lingerRead()
}

// lingerRead throws away what a half-closed client sends; its end of the
// stream (or an error) ends the session. It reads at most the turn's byte
// budget (turn_budget.go): the socket is level-triggered, so what is left
// brings it back next turn.
func (s *session) lingerRead() {
	var buf [4096]byte
	for budget := s.p.opts.ReadBytesPerEvent; budget > 0; {
		n, err := unix.Read(s.fd, buf[:])
		budget -= max(n, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil || n == 0:
			s.end()
			return
		}
	}
}
