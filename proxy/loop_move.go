package proxy

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Moving a client session from one event loop to another.
//
// The balancer (loop_balance.go) asks a loop to give some of its sessions
// to other loops: when it wakes a loop (half-busy loops share their
// clients with it) and when it lets one sleep (the loop hands all of its
// clients to the loops that stay awake). The source loop marks the
// sessions (moveTo) and moves each one at a command boundary where the
// session holds nothing that belongs to the loop:
//
//   - no request in its reply FIFO, so nothing is in flight on the source
//     loop's backend connections and no reply is owed through them;
//   - no reply rendered and unwritten, no data block half read, no command
//     parked, not on the loop's lists for the end of the turn or to resume.
//
// A marked session that is not quiet yet stops parsing at its next command
// boundary (readCommands pauses it) and becomes quiet when the replies it
// owes are written: a round trip to its backends at most, during which its
// client's later commands wait in the socket or, already read, in the
// session's read buffer. The buffer travels with the session, which parses
// it first thing on its new loop, so the client's commands keep their
// order; its settings (output limit, turn budget, drain, idle clock) travel
// with it too. Everything else of a session is the loop's only through
// s.l: the new loop's connections to each backend carry its commands from
// then on.
//
// The hand-over itself: the source loop takes the socket out of its epoll
// set (the socket stays open), forgets the session and posts it to the
// destination loop, which registers the socket and reads what it holds.
// Between the two the session belongs to neither loop, and the post's
// lock orders the source's last write before the destination's first read.

// moveSome asks up to n of the loop's sessions to move, dealt over dsts in
// turn. It runs on the loop; sessions already leaving, and sessions that no
// longer read commands (they are ending), are skipped.
func (l *eventLoop) moveSome(n int, dsts []*eventLoop) {
	if len(dsts) == 0 {
		return
	}
	i := 0
	for s := range l.sessions {
		if n <= 0 {
			break
		}
		if s.moveTo != nil || !s.reading() {
			continue
		}
		s.moveTo = dsts[i%len(dsts)]
		i++
		n--
		l.leaving = append(l.leaving, s)
	}
}

// moveLeaving moves the leaving sessions that are quiet; the others stay
// on the list until they are. It runs at the end of a turn, after the
// turn's writes.
func (l *eventLoop) moveLeaving() {
	keep := l.leaving[:0]
	for i, s := range l.leaving {
		l.leaving[i] = nil
		switch {
		case !s.reading():
			s.moveTo = nil // ending here: what it owes is written from this loop
		case s.quiet():
			l.handOver(s)
		default:
			keep = append(keep, s)
		}
	}
	l.leaving = keep
}

// quiet reports whether s holds nothing of its loop's: see the top of
// this file.
func (s *session) quiet() bool {
	return s.state == sessReading && s.head == nil && s.data == nil && !s.parked &&
		s.outOff == len(s.out) && !s.wantWrite && !s.dirty && !s.yielded
}

// handOver takes the quiet session s out of this loop and posts it to the
// loop it moves to.
func (l *eventLoop) handOver(s *session) {
	dst := s.moveTo
	s.moveTo = nil
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil); err != nil {
		l.p.log.Warn("epoll_ctl del of a moving client", zap.Int("fd", s.fd), zap.Error(err))
	}
	l.handlers[s.fd] = nil
	l.forget(s)
	s.l = dst
	l.p.balance.moves.Add(1)
	if !dst.post(s.arrive) {
		// Only a stopped loop refuses, and loops stop after the last
		// session ended; should one refuse, the session ends here.
		_ = unix.Close(s.fd)
		s.state = sessEnded
		s.p.sessionEnded(s)
	}
}

// arrive takes in a session moved from another loop; it runs on the new
// loop.
func (s *session) arrive() {
	l := s.l
	if l.quit {
		_ = unix.Close(s.fd)
		s.state = sessEnded
		s.p.sessionEnded(s)
		return
	}
	if s.paused {
		s.paused = false
		s.lastRead = l.now // the idle clock stood still while it waited to move
	}
	if err := l.register(s.fd, s, evRead); err != nil {
		s.p.log.Warn("register moved client", zap.Error(err))
		_ = unix.Close(s.fd)
		s.state = sessEnded
		s.p.sessionEnded(s)
		return
	}
	l.adopt(s)
	s.budget.turn = l.turn - 1 // a fresh budget in this loop's turn
	if s.p.opts.ClientIdleTimeout > 0 || s.draining() {
		l.timers.wantScan(l.now)
	}
	if s.p.draining.Load() {
		s.drain()
	}
	s.readCommands() // what it read on its old loop and has not parsed yet
}

// adopt makes s one of the loop's sessions: counted, and given one of the
// loop's connections to each backend in turn.
func (l *eventLoop) adopt(s *session) {
	l.sessions[s] = struct{}{}
	l.load.sessions.Add(1)
	s.connIndex = l.nextConn
	l.nextConn = (l.nextConn + 1) % l.p.connsPerLoop
}

// forget removes s from the loop's sessions.
func (l *eventLoop) forget(s *session) {
	if _, ok := l.sessions[s]; ok {
		delete(l.sessions, s)
		l.load.sessions.Add(-1)
	}
}
