package proxy

import (
	"errors"
	"io"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// readCommands parses and dispatches commands until the socket has no more
// bytes, the session has no room for another reply, it stops reading, or
// it has used up its budget for this turn (then it yields, and resumes
// next turn).
func (s *session) readCommands() {
	s.beginTurn()
	for s.reading() {
		if s.spent() {
			s.yield()
			return
		}
		if s.data != nil {
			if !s.continueData() {
				return
			}
			continue
		}
		if s.parked {
			if !s.dispatchParked() {
				s.pause()
				return
			}
			continue
		}
		if s.handingOver {
			s.pause() // the next command is the new process's to run
			return
		}
		if !s.hasRoom() || s.moveTo != nil {
			// No room for another reply, or a command boundary where the
			// session waits to move to another loop (loop_move.go).
			s.pause()
			return
		}
		before := s.in.n
		err := s.rr.Next(&s.req)
		s.countRead(before)
		if err == protocol.ErrWouldBlock {
			s.resume()
			if s.in.budget <= 0 {
				s.yield() // the socket may hold more than the budget let it read
			}
			return
		}
		s.budget.reqs--
		s.now = s.l.now
		if err == nil {
			if !s.dispatch(&s.req) {
				s.stopReading()
			}
			continue
		}
		s.readError(err)
	}
}

// readError handles what RequestReader.Next refused.
func (s *session) readError(err error) {
	var fe *protocol.ForeignError
	if errors.As(err, &fe) {
		s.p.stats.protocolRejects[fe.Kind].Add(1)
		s.p.log.Debug("client speaks another protocol; closing", zap.Stringer("protocol", fe.Kind),
			zap.String("client", s.remote))
		if len(fe.Reply) > 0 {
			s.enqueueLocalBytes(fe.Reply)
			s.lingerClose = true
		}
		s.stopReading() // what is owed is sent, then the connection closes
		return
	}
	var re *protocol.ReplyError
	if !errors.As(err, &re) {
		if !errors.Is(err, io.EOF) {
			s.p.log.Debug("client read", zap.String("client", s.remote), zap.Error(err))
		}
		s.stopReading()
		return
	}
	s.p.stats.clientErrors.Add(1)
	if re == protocol.ErrTooLarge && (s.req.Op == protocol.OpSet || s.req.Op == protocol.OpMetaSet) {
		// memcached drops the old value when a set is refused as too
		// large, so that a stale value is not served; so do we.
		s.dropStaleValue(s.req.Key())
	}
	if !s.req.NoReply || re == protocol.ErrLineTooLong {
		s.enqueueLocal(re.Line)
	}
	if re == protocol.ErrLineTooLong {
		s.stopReading() // the rest of the stream cannot be parsed
	}
}

// hasRoom reports whether the session may take another command: its FIFO
// is not full, the client is under its soft output limit, and no metadump
// of its is under way (metadump.go).
func (s *session) hasRoom() bool {
	return s.pending < maxPendingReplies && s.held.Load() < s.softLimit && (s.tail == nil || s.tail.dump == nil)
}

// keysFit reports whether a retrieval of n keys may be sent now: the keys
// in flight stay within the window (a single command of more keys than the
// window is sent in pieces, each of which fits an empty window).
func (s *session) keysFit(n int) bool {
	return s.keysInFlight == 0 || s.keysInFlight+n <= s.window
}

// pause stops reading the socket until there is room again.
func (s *session) pause() {
	if !s.paused && s.state < sessLost {
		s.paused = true
		s.setInterest()
	}
}

// resume reads the socket again.
func (s *session) resume() {
	if s.paused && s.state < sessLost {
		s.paused = false
		s.lastRead = s.l.now // the idle clock stood still while paused
		s.setInterest()
	}
}

// stopReading ends reading for good: quit, end of stream, an error, or
// the end of a drain. The session closes once its replies are out.
func (s *session) stopReading() {
	if !s.reading() {
		return
	}
	s.state = sessAnswering
	s.parked = false
	if s.data != nil {
		s.data.release()
		s.data = nil
	}
	if s.state < sessLost {
		s.setInterest()
	}
	s.l.markSession(s)
}

// continueData reads more of the data block of the storage command being
// read; it returns false when the socket has no more bytes for now.
func (s *session) continueData() bool {
	r := s.data
	before := s.in.n
	n, err := s.rr.ContinueData(r.out[len(r.out)-s.req.Bytes-2:], s.dataHave)
	s.countRead(before)
	s.dataHave = n
	if err == protocol.ErrWouldBlock {
		s.resume()
		if s.in.budget <= 0 {
			s.yield()
		}
		return false
	}
	s.data = nil
	s.storageArrived(r, err)
	return true
}

// countRead notes bytes read from the client since the reader had read
// before bytes in all.
func (s *session) countRead(before uint64) {
	if n := s.in.n - before; n > 0 {
		s.lastRead = s.l.now
		s.p.stats.bytesRead.Add(n)
	}
}
