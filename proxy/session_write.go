package proxy

import (
	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// maxRetainedOutput caps the output buffer a session keeps between
// replies, so one large reply does not pin its size for the connection's
// life.
const maxRetainedOutput = 64 << 10

// enqueue appends r to the reply FIFO. The caller has checked for room.
func (s *session) enqueue(r *request) {
	s.pending++
	s.keysInFlight += r.nkeys
	if s.tail == nil {
		s.head = r
	} else {
		s.tail.next = r
	}
	s.tail = r
}

// enqueueLocal queues a reply line the proxy makes itself.
func (s *session) enqueueLocal(line string) { s.enqueueLocalFor(protocol.OpNone, line) }

// enqueueLocalFor queues a reply line the proxy makes itself to a command
// of op, which the request keeps, so that what comes after it can tell
// what it answered (metadumpPipelined).
func (s *session) enqueueLocalFor(op protocol.Op, line string) {
	r := newRequest(s, op)
	r.local = append(append(r.local, line...), "\r\n"...)
	s.enqueue(r)
	r.finish()
}

// enqueueLocalBytes queues a multi-line reply the proxy made itself.
func (s *session) enqueueLocalBytes(b []byte) {
	r := newRequest(s, protocol.OpNone)
	r.local = append(r.local, b...)
	s.enqueue(r)
	r.finish()
}

// requestDone is called when a request of this session finishes.
func (s *session) requestDone(r *request) {
	r.done = true
	s.keysInFlight -= r.nkeys
	s.l.markSession(s)
}

// endTurn ends the turn of a session marked dirty: it writes the replies
// that are ready.
func (s *session) endTurn() {
	s.dirty = false
	s.writeReplies()
}

// writeReplies renders the finished head of the FIFO, writes what the socket
// takes, and reads again if that made room. It runs at the end of a turn.
func (s *session) writeReplies() {
	if s.state == sessEnded {
		return
	}
	for {
		s.renderReady()
		s.writeOut()
		if s.state >= sessLost || s.wantWrite || s.head == nil || !s.head.done && !s.head.dumpReady() {
			break // the socket is full, or nothing more is ready
		}
	}
	if s.state == sessEnded {
		return
	}
	if (s.paused || s.parked) && s.reading() {
		s.readCommands()
	}
	s.maybeEnd()
	if s.handingOver {
		s.maybeHandOver()
	}
}

// outputHighWater bounds the rendered output a session holds unwritten.
// Rendering copies a reply into the output buffer; past this much, finished
// replies wait in the FIFO, in the memory they were read into (which the
// output limit already counts), until the socket takes what is rendered.
// So a client that reads slowly costs its replies once, not twice, and the
// output buffer never grows past one reply beyond this.
const outputHighWater = 256 << 10

// renderReady renders the finished head of the FIFO, in order, into the
// output buffer, up to outputHighWater.
func (s *session) renderReady() {
	s.compactOut()
	for r := s.head; r != nil && (s.state >= sessLost || len(s.out)-s.outOff < outputHighWater); r = s.head {
		if r.dump != nil && !s.streamDump(r) {
			break // the rest of the dump has yet to arrive, or to fit (metadump.go)
		}
		if !r.done {
			break
		}
		s.head = r.next
		if s.head == nil {
			s.tail = nil
		}
		s.pending--
		if l := s.p.latency; l != nil && r.op != protocol.OpNone && len(r.local) == 0 && !r.more {
			l.observe(r.op, r.start)
		}
		charged := r.chargedBytes()
		if s.state < sessQuitting {
			n := len(s.out)
			s.out = s.render(s.out, r)
			charged -= int64(len(s.out) - n) // rendered bytes stay charged until written
			if r.op == protocol.OpQuit {
				s.state = sessQuitting // everything before quit is still owed to the client
			}
		}
		if charged != 0 {
			s.held.Add(-charged)
		}
		r.release()
	}
}

// compactOut moves the unwritten output to the front of its buffer, so
// that what was written is not kept while a client that never quite catches
// up goes on reading.
func (s *session) compactOut() {
	if s.outOff == 0 {
		return
	}
	n := copy(s.out, s.out[s.outOff:])
	s.out, s.outOff = s.out[:n], 0
}

// writeOut writes the rendered replies.
func (s *session) writeOut() {
	if s.state >= sessLost || s.outOff == len(s.out) {
		s.setWantWrite(false)
		return
	}
	n, err := writeSome(s.fd, s.out[s.outOff:])
	if n > 0 {
		s.outOff += n
		s.held.Add(-int64(n))
		s.p.stats.bytesWritten.Add(uint64(n))
	}
	if err != nil {
		s.p.log.Debug("client write", zap.String("client", s.remote), zap.Error(err))
		s.lost()
		return
	}
	if s.outOff < len(s.out) {
		s.setWantWrite(true)
		return
	}
	s.out, s.outOff = s.out[:0], 0
	if cap(s.out) > maxRetainedOutput {
		s.out = nil
	}
	s.setWantWrite(false)
}

func (s *session) setWantWrite(on bool) {
	if s.wantWrite != on && s.state < sessLost {
		s.wantWrite = on
		s.setInterest()
	}
}
